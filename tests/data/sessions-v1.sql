BEGIN TRANSACTION;
CREATE TABLE conversations (
                id           INTEGER PRIMARY KEY,
                channel      TEXT NOT NULL,
                key          TEXT NOT NULL,
                profile      TEXT NOT NULL,
                session_id   TEXT NOT NULL DEFAULT '',
                session_name TEXT NOT NULL DEFAULT 'default',
                turn_count   INTEGER NOT NULL DEFAULT 0,
                created_at   REAL NOT NULL,
                updated_at   REAL NOT NULL,
                last_status  TEXT NOT NULL DEFAULT '',
                state        TEXT,
                UNIQUE (channel, key, profile)
            );
INSERT INTO "conversations" VALUES(1,'terminal','default','echo','s-echo-2','default',3,1700000000.0,1700000002.0,'cancelled','{"mode": "terse", "n": [1, 2]}');
INSERT INTO "conversations" VALUES(2,'telegram','chat:42','claude-code','','default',2,1700000003.0,1700000012.0,'timeout',NULL);
INSERT INTO "conversations" VALUES(3,'slack','a@b:c@d','team:bot@v2','odd-3','default',5,1700000005.0,1700000009.0,'error',NULL);
INSERT INTO "conversations" VALUES(4,'http','only-state','echo','','default',0,1700000011.0,1700000011.0,'','{"only": "state"}');
CREATE TABLE schema_version (
                version    INTEGER PRIMARY KEY,
                applied_at REAL NOT NULL
            );
INSERT INTO "schema_version" VALUES(1,1.79618198198019838338e+09);
CREATE TABLE transcript (
                id              INTEGER PRIMARY KEY,
                conversation_id INTEGER NOT NULL
                                REFERENCES conversations (id) ON DELETE CASCADE,
                turn            INTEGER NOT NULL,
                message         TEXT NOT NULL,
                attachments     TEXT NOT NULL DEFAULT '[]',
                reply           TEXT NOT NULL DEFAULT '',
                error           TEXT,
                session_id      TEXT NOT NULL DEFAULT '',
                exit_code       INTEGER NOT NULL DEFAULT 0,
                from_user       TEXT NOT NULL DEFAULT '',
                started_at      REAL NOT NULL DEFAULT 0,
                duration_ms     INTEGER NOT NULL DEFAULT 0
            );
INSERT INTO "transcript" VALUES(1,1,1,'hello','[]','You said: hello',NULL,'s-echo',0,'alice',1700000100.0,10);
INSERT INTO "transcript" VALUES(2,1,2,'fail please','[]','','boom: the agent failed','s-echo',1,'',1700000200.0,20);
INSERT INTO "transcript" VALUES(3,1,3,'long job','[]','partial','cancelled','s-echo-2',130,'',1700000300.0,30);
INSERT INTO "transcript" VALUES(4,2,1,'what is in this picture? ✓','[{"type": "image", "url": "https://example.com/cat.png"}]','a cat',NULL,'sess-tele',0,'tg:123',1700000100.0,10);
INSERT INTO "transcript" VALUES(5,2,2,'slow','[]','','timed out after 2 s','sess-tele',124,'tg:123',1700000200.0,20);
INSERT INTO "transcript" VALUES(8,3,3,'three','[]','3',NULL,'odd-3',0,'U2',1700000300.0,30);
INSERT INTO "transcript" VALUES(9,3,4,'four','[{"type": "file", "url": "file:///tmp/a.txt", "name": "a.txt"}]','4',NULL,'odd-3',0,'U2',1700000400.0,40);
INSERT INTO "transcript" VALUES(10,3,5,'five','[]','','no','',2,'U1',1700000500.0,50);
CREATE INDEX conversations_by_update ON conversations (updated_at);
CREATE INDEX transcript_by_conversation ON transcript (conversation_id, id);
COMMIT;
