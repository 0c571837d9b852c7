-- The backend a job or stage is planned for: part of its key (flex keeps the keys it had
-- before), and what a worker claims by. Stages already record the backend they ran on;
-- from now on it is set when they are planned.
ALTER TABLE jobs ADD COLUMN backend TEXT NOT NULL DEFAULT 'flex';
UPDATE stages SET backend = 'flex' WHERE backend IS NULL;
