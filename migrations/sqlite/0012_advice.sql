-- `thaw advise`: the forecast made for a sweep from frozen features and short fine-tuning
-- probes. Keyed by the sweep's name, not its id: the advice may come before the sweep is
-- registered. The report shows the latest beside the verdict.
CREATE TABLE advice (
    sweep           TEXT NOT NULL,
    made_at         REAL NOT NULL,
    forecast        TEXT NOT NULL,  -- thaw_analysis::advice::Forecast as JSON
    advisor_seconds REAL NOT NULL,  -- what the advice spent
    grid_seconds    REAL NOT NULL,  -- the whole grid's estimated training time
    PRIMARY KEY (sweep, made_at)
);
