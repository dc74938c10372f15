-- Seconds a real-time session's data is kept after it ends (its own `retention`, or its tenant's retention_days);
-- -1: kept until deleted. The purge worker deletes sessions whose time has run out. The runner skips the column
-- when it exists already (code 44), as 18.16 has no ADD COLUMN IF NOT EXISTS.
ALTER TABLE {{db}}.realtime_sessions ADD COLUMN retention_seconds Int64 DEFAULT -1
