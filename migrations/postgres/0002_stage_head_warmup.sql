-- Steps spent fitting a fresh MLM head on the frozen encoder before the "before" loss
-- (checkpoints without an MLM head, such as MiniLM); NULL when the head came with the model.
ALTER TABLE stages ADD COLUMN head_warmup_steps BIGINT;
