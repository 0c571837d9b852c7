-- Mean characters of text per masked held-out token of an MLM stage: how finely the
-- vocabulary cuts the text. ln(perplexity) / chars_per_token is the loss per character,
-- comparable across tokenizations where per-token perplexity is not. NULL for stages
-- finished before this column existed.
ALTER TABLE stages ADD COLUMN heldout_chars_per_token DOUBLE PRECISION;
