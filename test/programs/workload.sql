-- Scripted workload for the sqlite3 CLI. The test prepends
-- `PRAGMA journal_mode=<mode>;`. Deterministic: no random(), no times.
.headers off
.mode list
PRAGMA cache_size=40;
CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT NOT NULL, score INTEGER, pad BLOB);
CREATE TABLE log(id INTEGER PRIMARY KEY, msg TEXT);
-- Large enough (~1 MB) to spill the 40-page cache mid-transaction.
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3000)
INSERT INTO t SELECT i, 'name-' || i, (i * 7919) % 1000, zeroblob(200 + i % 97) FROM n;
CREATE INDEX t_score ON t(score);
UPDATE t SET score = score + 1, name = name || '+' WHERE id % 3 = 0;
DELETE FROM t WHERE id % 5 = 0;
SELECT 'after-dml', count(*), sum(score), min(id), max(id) FROM t;
BEGIN;
DELETE FROM t;
INSERT INTO log(msg) VALUES ('rolled back');
ROLLBACK;
SELECT 'after-rollback', count(*), (SELECT count(*) FROM log) FROM t;
BEGIN;
INSERT INTO log(msg) SELECT 'row ' || id FROM t WHERE id < 200;
UPDATE t SET pad = zeroblob(1000) WHERE id BETWEEN 1000 AND 1200;
COMMIT;
DELETE FROM t WHERE id > 2500;
VACUUM;
SELECT 'after-vacuum', count(*), sum(length(pad)), (SELECT count(*) FROM log) FROM t;
SELECT 'top', score, count(*) FROM t GROUP BY score ORDER BY count(*) DESC, score LIMIT 5;
SELECT 'range', id, name, score, length(pad) FROM t WHERE score BETWEEN 100 AND 103 ORDER BY id;
SELECT 'index-used', count(*) FROM t INDEXED BY t_score WHERE score > 900;
DROP INDEX t_score;
CREATE INDEX t_name ON t(name);
SELECT 'by-name', id FROM t WHERE name = 'name-99+';
PRAGMA integrity_check;
