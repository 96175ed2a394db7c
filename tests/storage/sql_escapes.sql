-- SQL escape attempts: each statement (separated by a line holding only "-- next") must be refused
-- by the sandbox for both roles. KEYFILE stands for the data directory's key files, DATADIR for the
-- data directory. Lines starting with "-- " before a statement are its comment.
SELECT * FROM file('KEYFILE', 'RawBLOB')
-- next
SELECT * FROM file('DATADIR/collector.toml', 'LineAsString')
-- next
SELECT * FROM file('/proc/self/environ', 'RawBLOB')
-- next
SELECT file('KEYFILE')
-- next
SELECT hex(file('KEYFILE')) AS k FROM pages_daily
-- next
select * from FILE('KEYFILE', 'RawBLOB')
-- next
SELECT * FROM `file`('KEYFILE', 'RawBLOB')
-- next
SELECT * FROM "file"('KEYFILE', 'RawBLOB')
-- next
SELECT * FROM /* comment */ file(/* x */ 'KEYFILE', 'RawBLOB') -- trailing
-- next
WITH k AS (SELECT * FROM file('KEYFILE', 'RawBLOB')) SELECT * FROM k
-- next
WITH file('KEYFILE') AS k SELECT k
-- next
SELECT * FROM pages_daily WHERE path IN (SELECT * FROM file('KEYFILE', 'RawBLOB'))
-- next
SELECT (SELECT file('KEYFILE'))
-- next
SELECT 1 UNION ALL SELECT file('KEYFILE')
-- next
SELECT path FROM pages_daily UNION ALL SELECT * FROM file('KEYFILE', 'LineAsString')
-- next
SELECT * FROM pages_daily AS p JOIN file('KEYFILE', 'RawBLOB') AS f ON 1
-- next
SELECT arrayMap(x -> file(x), ['KEYFILE'])
-- next
SELECT * APPLY(file) FROM pages_daily
-- next
SELECT * FROM url('http://127.0.0.1:9/', 'RawBLOB')
-- next
SELECT * FROM s3('http://127.0.0.1:9/bucket/x', 'RawBLOB')
-- next
SELECT * FROM hdfs('hdfs://127.0.0.1:9/x', 'RawBLOB')
-- next
SELECT * FROM remote('127.0.0.1:9000', system.one)
-- next
SELECT * FROM remoteSecure('127.0.0.1:9440', system.one)
-- next
SELECT * FROM cluster('default', system.one)
-- next
SELECT * FROM executable('id', 'LineAsString', 'x String')
-- next
SELECT * FROM input('x String')
-- next
SELECT * FROM mysql('127.0.0.1:3306', 'db', 't', 'u', 'p')
-- next
SELECT * FROM postgresql('127.0.0.1:5432', 'db', 't', 'u', 'p')
-- next
SELECT * FROM jdbc('jdbc:x', 't')
-- next
SELECT * FROM odbc('DSN=x', 't')
-- next
SELECT * FROM sqlite('DATADIR/x.db', 't')
-- next
SELECT * FROM azureBlobStorage('http://127.0.0.1:9', 'c', 'x')
-- next
SELECT * FROM dictionary('d')
-- next
SELECT dictGet('d', 'a', 1)
-- next
SELECT dictGetString('d', 'a', toUInt64(1))
-- next
SELECT joinGet('events', 'visitor_id', 1)
-- next
SELECT * FROM numbers(1000000000000)
-- next
SELECT * FROM view(SELECT * FROM member_events)
-- next
SELECT * FROM merge(currentDatabase(), '.*')
-- next
SELECT * FROM generateRandom('a String')
-- next
SELECT sleep(3)
-- next
SELECT sleepEachRow(3) FROM pages_daily
-- next
SELECT count() FROM pages_daily WHERE sleepEachRow(1) = 0
-- next
SELECT getServerSetting('path')
-- next
SELECT getMacro('x')
-- next
SELECT hasColumnInTable('system', 'tables', 'name')
-- next
SELECT aiGenerate('hello')
-- next
SELECT * FROM system.tables
-- next
SELECT * FROM SYSTEM.tables
-- next
SELECT * FROM `system`.`tables`
-- next
SELECT * FROM "system"."query_log"
-- next
SELECT * FROM information_schema.tables
-- next
SELECT * FROM INFORMATION_SCHEMA.COLUMNS
-- next
SELECT path FROM pages_daily AS p JOIN system.disks AS d ON 1
-- next
SELECT path FROM pages_daily WHERE path IN system.tables
-- next
SELECT path FROM pages_daily WHERE path IN (SELECT name FROM system.tables)
-- next
SELECT path FROM pages_daily UNION ALL SELECT name FROM system.databases
-- next
SELECT system.one.dummy FROM pages_daily
-- next
SELECT * FROM other_db.events
-- next
SELECT * FROM default.t
-- next
SELECT * FROM `analytics.events`
-- next
SELECT 1 INTO OUTFILE 'DATADIR/x.pth'
-- next
SELECT path FROM pages_daily INTO OUTFILE 'DATADIR/x.csv' FORMAT CSV
-- next
SELECT 1 INTO OUTFILE 'DATADIR/x' AND STDOUT COMPRESSION 'gzip'
-- next
INSERT INTO FUNCTION file('DATADIR/x.pth', 'LineAsString') SELECT 'import os'
-- next
INSERT INTO events (site) VALUES ('x')
-- next
INSERT INTO events SELECT * FROM events
-- next
CREATE TABLE x (a String) ENGINE = File(LineAsString, 'DATADIR/x')
-- next
CREATE TABLE x ENGINE = URL('http://127.0.0.1:9/') AS SELECT 1
-- next
CREATE VIEW v AS SELECT * FROM member_events
-- next
CREATE DICTIONARY d (a UInt64) PRIMARY KEY a SOURCE(FILE(path 'KEYFILE' format 'RawBLOB')) LAYOUT(FLAT()) LIFETIME(0)
-- next
DROP TABLE events
-- next
TRUNCATE TABLE events
-- next
ALTER TABLE events DELETE WHERE 1
-- next
ALTER TABLE events UPDATE path = '' WHERE 1
-- next
DELETE FROM events WHERE 1
-- next
OPTIMIZE TABLE events FINAL
-- next
KILL QUERY WHERE 1
-- next
SYSTEM SHUTDOWN
-- next
SYSTEM FLUSH LOGS
-- next
GRANT ALL ON *.* TO default
-- next
ATTACH TABLE x FROM 'DATADIR' (a String) ENGINE = Memory
-- next
DETACH TABLE events
-- next
RENAME TABLE events TO e2
-- next
SET readonly = 0
-- next
SET allow_ddl = 1
-- next
SELECT 1 SETTINGS readonly = 0
-- next
SELECT path FROM pages_daily SETTINGS max_execution_time = 100000
-- next
SELECT 1 FORMAT JSON SETTINGS max_result_rows = 0
-- next
SELECT * FROM (SELECT path FROM pages_daily SETTINGS max_threads = 64)
-- next
USE system
-- next
SHOW TABLES
-- next
SHOW TABLES FROM system
-- next
SHOW CREATE TABLE events
-- next
SHOW GRANTS
-- next
DESCRIBE TABLE events
-- next
DESCRIBE file('KEYFILE')
-- next
EXISTS TABLE events
-- next
EXPLAIN SELECT * FROM file('KEYFILE')
-- next
EXPLAIN AST SELECT 1
-- next
EXPLAIN SYNTAX SELECT * FROM member_events
-- next
SELECT 1; SELECT * FROM file('KEYFILE', 'RawBLOB')
-- next
SELECT 1; DROP TABLE events
-- next
SELECT 1;; INSERT INTO FUNCTION file('DATADIR/x') SELECT 1
-- next
SELECT 1 FORMAT Template
-- next
SELECT 1 FORMAT CapnProto
-- next
SELECT 1 FORMAT Protobuf
-- next
SELECT 1 FORMAT `JSON; DROP TABLE events`
-- next
SELECT * FROM (SELECT 1 FORMAT JSON)
-- next
SELECT {k:String}
-- next
SELECT * FROM pages_daily WHERE path = {p:String}
-- next
WITH RECURSIVE r AS (SELECT 1 AS n UNION ALL SELECT n + 1 FROM r) SELECT * FROM r
-- next
SELECT formatQuery('SELECT 1')
-- next
SELECT parseQueryToJSON('SELECT 1')
-- next
SELECT currentUser(), hostName(), version(), uptime()
-- next
SELECT generateSerialID('x')
-- next
SELECT filesystemAvailable()
-- next
SELECT __getScalar('x')
-- next
SELECT * FROM pages_daily WHERE path = 'x' OR 1 IN (SELECT 1 FROM url('http://127.0.0.1:9/', 'RawBLOB'))
-- next
SELECT * FROM pages_daily AS p LEFT ARRAY JOIN [file('KEYFILE')] AS k
-- next
-- a parameterized view's arguments may not hide a table function or a system table
SELECT * FROM funnel(steps = (SELECT groupArray(name) FROM system.tables), since = toDate('2026-01-01'), until = toDate('2027-01-01'))
-- next
SELECT * FROM funnel(file('KEYFILE', 'RawBLOB'))
-- next
SELECT * FROM funnel(steps = [file('KEYFILE')], since = toDate('2026-01-01'), until = toDate('2027-01-01'))
-- next
-- a plain view called like a table function
SELECT * FROM pages_daily(x = 1)
