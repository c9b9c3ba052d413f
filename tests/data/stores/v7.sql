-- A results store of schema version 7 (before amounts had units), as ecorules at a5195d6 wrote it:
-- ecorules run --registry examples/registry.csv --out v7.sqlite --as-of 2012-04-14, dumped by sqlite3's iterdump.
-- tests/engine/test_ledger_fen.py migrates it.
BEGIN TRANSACTION;
CREATE TABLE assessed (
    run_id INTEGER NOT NULL,
    case_id TEXT NOT NULL,
    uscc TEXT NOT NULL,
    policy TEXT NOT NULL,
    version TEXT NOT NULL,
    rule TEXT NOT NULL,
    kind TEXT NOT NULL,
    amount_yuan INTEGER NOT NULL,
    decided TEXT,
    reason TEXT NOT NULL CHECK (reason IN ('first', 'new decision', 'reassessed')),
    supersedes_run INTEGER
);
CREATE TABLE district_totals (
    run_id INTEGER NOT NULL,
    district TEXT NOT NULL,
    deduction_yuan INTEGER NOT NULL,
    cases INTEGER NOT NULL,
    PRIMARY KEY (run_id, district)
) WITHOUT ROWID;
INSERT INTO "district_totals" VALUES(1,'中原区',23000000,1);
INSERT INTO "district_totals" VALUES(1,'巩义市',11000000,1);
INSERT INTO "district_totals" VALUES(1,'新密市',33000000,3);
INSERT INTO "district_totals" VALUES(1,'荥阳市',3000000,2);
INSERT INTO "district_totals" VALUES(1,'郑州经济技术开发区',53000000,5);
INSERT INTO "district_totals" VALUES(1,'金水区',13000000,2);
CREATE TABLE finding_chunks (
    run_id INTEGER NOT NULL,
    slot INTEGER NOT NULL,
    rows TEXT NOT NULL,
    law_note TEXT
);
INSERT INTO "finding_chunks" VALUES(1,0,'[["91410182MAXMNKDQ2R",1000000,"荥阳市"],["9141010063836089XA",1000000,"新密市"],["91410183MACPERX1X8",2000000,"新密市"],["91410105MAURQAC95R",3000000,"金水区"],["91410100MA9KE5N91D",1000000,"郑州经济技术开发区"],["91410182MADWR18F3B",2000000,"荥阳市"],["91410100MAMJDNG424",2000000,"郑州经济技术开发区"],["91410181MA60FAH21C",1000000,"巩义市"],["91410102MA6LPNDH8M",3000000,"中原区"]]',NULL);
INSERT INTO "finding_chunks" VALUES(1,1,'[["914101054458582886",10000000,"金水区"],["914101004760053415",20000000,"郑州经济技术开发区"],["91410100577201667L",10000000,"郑州经济技术开发区"],["91410100MAFL2XBR54",10000000,"郑州经济技术开发区"],["91410183MAGAMJRP3J",30000000,"新密市"],["91410100MAMJDNG424",10000000,"郑州经济技术开发区"],["91410181MA60FAH21C",10000000,"巩义市"],["91410102MA6LPNDH8M",20000000,"中原区"]]',NULL);
CREATE TABLE finding_slots (
    run_id INTEGER NOT NULL,
    slot INTEGER NOT NULL,
    policy TEXT NOT NULL,
    rule TEXT NOT NULL,
    kind TEXT NOT NULL,
    citation TEXT NOT NULL,
    record_kind TEXT,
    PRIMARY KEY (run_id, slot)
) WITHOUT ROWID;
INSERT INTO "finding_slots" VALUES(1,0,'zhengzhou.eco_water_interception@2011','untreated_outfall_deduction','fiscal_deduction','《创新管理机制 强化管理手段努力推动环保工作科学发展》(郑州日报 2012-04-14) 七、(二)',NULL);
INSERT INTO "finding_slots" VALUES(1,1,'zhengzhou.eco_water_interception@2011','direct_discharge_deduction','fiscal_deduction','《创新管理机制 强化管理手段努力推动环保工作科学发展》(郑州日报 2012-04-14) 七、(二)',NULL);
CREATE TABLE lifts (
    run_id INTEGER NOT NULL,
    uscc TEXT NOT NULL,
    list TEXT NOT NULL,
    policy TEXT NOT NULL,
    rule TEXT NOT NULL,
    reason TEXT NOT NULL,
    case_id TEXT,
    effective TEXT NOT NULL
);
CREATE TABLE list_rules (
    id INTEGER PRIMARY KEY,
    list TEXT NOT NULL,
    policy TEXT NOT NULL,
    rule TEXT NOT NULL,
    UNIQUE (list, policy, rule)
);
INSERT INTO "list_rules" VALUES(1,'green_credit_blacklist','zhengzhou.green_credit','illegal_discharge_blacklist');
INSERT INTO "list_rules" VALUES(2,'restricted_loans','zhengzhou.green_credit','high_pollution_energy_restricted_loans');
CREATE TABLE list_state (
    id INTEGER PRIMARY KEY,
    rule_id INTEGER NOT NULL REFERENCES list_rules (id),
    uscc TEXT NOT NULL,
    tag TEXT NOT NULL,
    case_id TEXT,
    text_id INTEGER NOT NULL REFERENCES list_texts (id),
    started TEXT NOT NULL,
    planned_end TEXT,
    ended TEXT,
    exit TEXT CHECK (exit IS NULL OR exit IN ('expired', 'lifted', 'no_longer_justified', 'decision')),
    exit_reason TEXT,
    first_run INTEGER NOT NULL,
    last_run INTEGER NOT NULL,
    exit_run INTEGER,
    CHECK ((exit IS NULL) = (ended IS NULL))
);
INSERT INTO "list_state" VALUES(1,1,'914101004760053415','',NULL,1,'2012-04-14',NULL,NULL,NULL,NULL,1,1,NULL);
INSERT INTO "list_state" VALUES(2,1,'91410100577201667L','',NULL,1,'2012-04-14',NULL,NULL,NULL,NULL,1,1,NULL);
INSERT INTO "list_state" VALUES(3,1,'914101005942374341','',NULL,1,'2012-04-14',NULL,NULL,NULL,NULL,1,1,NULL);
INSERT INTO "list_state" VALUES(4,1,'91410100645170082A','',NULL,1,'2012-04-14',NULL,NULL,NULL,NULL,1,1,NULL);
INSERT INTO "list_state" VALUES(5,1,'91410100MAFL2XBR54','',NULL,1,'2012-04-14',NULL,NULL,NULL,NULL,1,1,NULL);
INSERT INTO "list_state" VALUES(6,1,'91410100MAMJDNG424','',NULL,1,'2012-04-14',NULL,NULL,NULL,NULL,1,1,NULL);
INSERT INTO "list_state" VALUES(7,1,'91410100MARRRFD95N','',NULL,1,'2012-04-14',NULL,NULL,NULL,NULL,1,1,NULL);
INSERT INTO "list_state" VALUES(8,1,'91410102MA6LPNDH8M','',NULL,1,'2012-04-14',NULL,NULL,NULL,NULL,1,1,NULL);
INSERT INTO "list_state" VALUES(9,1,'91410102MAH4HXMQ76','',NULL,1,'2012-04-14',NULL,NULL,NULL,NULL,1,1,NULL);
INSERT INTO "list_state" VALUES(10,1,'914101054458582886','',NULL,1,'2012-04-14',NULL,NULL,NULL,NULL,1,1,NULL);
INSERT INTO "list_state" VALUES(11,1,'91410105MAW2GHD89A','',NULL,1,'2012-04-14',NULL,NULL,NULL,NULL,1,1,NULL);
INSERT INTO "list_state" VALUES(12,1,'91410106MA6RXHT70D','',NULL,1,'2012-04-14',NULL,NULL,NULL,NULL,1,1,NULL);
INSERT INTO "list_state" VALUES(13,1,'91410108MAWG076J2J','',NULL,1,'2012-04-14',NULL,NULL,NULL,NULL,1,1,NULL);
INSERT INTO "list_state" VALUES(14,1,'91410181MA60FAH21C','',NULL,1,'2012-04-14',NULL,NULL,NULL,NULL,1,1,NULL);
INSERT INTO "list_state" VALUES(15,1,'91410183MAGAMJRP3J','',NULL,1,'2012-04-14',NULL,NULL,NULL,NULL,1,1,NULL);
INSERT INTO "list_state" VALUES(16,2,'914101004760053415','',NULL,2,'2012-04-14',NULL,NULL,NULL,NULL,1,1,NULL);
INSERT INTO "list_state" VALUES(17,2,'91410100577201667L','',NULL,2,'2012-04-14',NULL,NULL,NULL,NULL,1,1,NULL);
INSERT INTO "list_state" VALUES(18,2,'91410100MA59C7RG12','',NULL,2,'2012-04-14',NULL,NULL,NULL,NULL,1,1,NULL);
INSERT INTO "list_state" VALUES(19,2,'91410100MAHNKD863T','',NULL,2,'2012-04-14',NULL,NULL,NULL,NULL,1,1,NULL);
INSERT INTO "list_state" VALUES(20,2,'91410100MAHQNJDJ7G','',NULL,2,'2012-04-14',NULL,NULL,NULL,NULL,1,1,NULL);
INSERT INTO "list_state" VALUES(21,2,'91410100MAMJDNG424','',NULL,2,'2012-04-14',NULL,NULL,NULL,NULL,1,1,NULL);
INSERT INTO "list_state" VALUES(22,2,'91410102175768572H','',NULL,2,'2012-04-14',NULL,NULL,NULL,NULL,1,1,NULL);
INSERT INTO "list_state" VALUES(23,2,'91410102MA6LPNDH8M','',NULL,2,'2012-04-14',NULL,NULL,NULL,NULL,1,1,NULL);
INSERT INTO "list_state" VALUES(24,2,'914101054458582886','',NULL,2,'2012-04-14',NULL,NULL,NULL,NULL,1,1,NULL);
INSERT INTO "list_state" VALUES(25,2,'91410105MAW2GHD89A','',NULL,2,'2012-04-14',NULL,NULL,NULL,NULL,1,1,NULL);
INSERT INTO "list_state" VALUES(26,2,'914101083927761143','',NULL,2,'2012-04-14',NULL,NULL,NULL,NULL,1,1,NULL);
INSERT INTO "list_state" VALUES(27,2,'91410181MA60FAH21C','',NULL,2,'2012-04-14',NULL,NULL,NULL,NULL,1,1,NULL);
INSERT INTO "list_state" VALUES(28,2,'91410181MAAGM4HJ4B','',NULL,2,'2012-04-14',NULL,NULL,NULL,NULL,1,1,NULL);
INSERT INTO "list_state" VALUES(29,2,'91410182MAXMNKDQ2R','',NULL,2,'2012-04-14',NULL,NULL,NULL,NULL,1,1,NULL);
INSERT INTO "list_state" VALUES(30,2,'9141018399743132XQ','',NULL,2,'2012-04-14',NULL,NULL,NULL,NULL,1,1,NULL);
INSERT INTO "list_state" VALUES(31,2,'91410184480273509L','',NULL,2,'2012-04-14',NULL,NULL,NULL,NULL,1,1,NULL);
CREATE TABLE list_texts (
    id INTEGER PRIMARY KEY,
    version TEXT NOT NULL,
    reason TEXT NOT NULL,
    citation TEXT NOT NULL,
    UNIQUE (version, reason, citation)
);
INSERT INTO "list_texts" VALUES(1,'2012','存在已查实的违法排污案件','《创新管理机制 强化管理手段努力推动环保工作科学发展》(郑州日报 2012-04-14) 四、(三)');
INSERT INTO "list_texts" VALUES(2,'2012','属于高污染或高能耗产业','《创新管理机制 强化管理手段努力推动环保工作科学发展》(郑州日报 2012-04-14) 四、(三)');
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
INSERT INTO "meta" VALUES('schema_version','7');
CREATE TABLE rejects (
    run_id INTEGER NOT NULL,
    source TEXT NOT NULL,
    row INTEGER,
    "column" TEXT,
    value TEXT,
    reason TEXT NOT NULL
);
CREATE TABLE runs (
    id INTEGER PRIMARY KEY,
    started TEXT NOT NULL,
    finished TEXT,
    status TEXT NOT NULL CHECK (status IN ('running', 'done', 'failed')),
    as_of TEXT NOT NULL,
    source TEXT NOT NULL,
    input_fingerprint TEXT,
    input_stat TEXT,
    policy_fingerprint TEXT NOT NULL,
    policies TEXT NOT NULL,
    ecorules_version TEXT NOT NULL,
    rows_in INTEGER,
    rows_scored INTEGER,
    rows_rejected INTEGER,
    total_yuan INTEGER,
    summary TEXT,
    error TEXT,
    pid INTEGER,
    host TEXT,
    CHECK (status != 'done' OR (rows_in IS NOT NULL AND rows_in = rows_scored + rows_rejected))
);
INSERT INTO "runs" VALUES(1,'2026-12-06T06:33:12.945+00:00','2026-12-06T06:33:13.053+00:00','done','2012-04-14','/work/wt-fen/examples/registry.csv','fa2dbee5517124ea5aeaa87a5e60f7633a45e328a3d6f23a4ccde23207db1995','bf0a97c02b13bb43a82d7df35a0281dba1d99d84659b4019ac928fa6aa66e58d','d490d0d9146651610d9702b8d1db132748bfd87ce6cd88749a21f674f7fd0500','[{"id": "zhengzhou.eco_water_interception", "version": "2011", "content_hash": "a1e9b31b3393c553e307395bce534ab462d00a6d667c3dac61d1df8753c3306d", "in_force": true}, {"id": "zhengzhou.green_credit", "version": "2012", "content_hash": "4a1276ca7fdf7adaf84b073f28149b1baa8a2f797739eda454da4a2a3c5a6d72", "in_force": true}]','0.1.0',50,50,0,136000000,'{"findings": 17, "lists": {"green_credit_blacklist": 15, "restricted_loans": 16}, "rejects_by_reason": [], "warnings": [], "sources": [{"source": "/work/wt-fen/examples/registry.csv", "format": "csv", "encoding": "utf-8", "encoding_why": "UTF-8: the file decodes as UTF-8", "separator": "comma", "rows_in": 50, "rows_rejected": 0}], "list_entries": {"kept": 0, "entered": 31, "lifted": 0, "expired": 0, "no_longer_justified": 0}}',NULL,23981,'vm');
CREATE TABLE sanction_chunks (
    run_id INTEGER NOT NULL,
    slot INTEGER NOT NULL,
    usccs TEXT NOT NULL
);
INSERT INTO "sanction_chunks" VALUES(1,0,'["914101054458582886","914101004760053415","91410100577201667L","91410100MAFL2XBR54","91410183MAGAMJRP3J","91410100MARRRFD95N","91410106MA6RXHT70D","91410102MAH4HXMQ76","914101005942374341","91410108MAWG076J2J","91410100645170082A","91410105MAW2GHD89A","91410100MAMJDNG424","91410181MA60FAH21C","91410102MA6LPNDH8M"]');
INSERT INTO "sanction_chunks" VALUES(1,1,'["91410182MAXMNKDQ2R","914101054458582886","914101004760053415","91410100577201667L","91410105MAW2GHD89A","91410184480273509L","9141018399743132XQ","91410181MAAGM4HJ4B","91410100MAHQNJDJ7G","91410100MA59C7RG12","91410102175768572H","914101083927761143","91410100MAHNKD863T","91410100MAMJDNG424","91410181MA60FAH21C","91410102MA6LPNDH8M"]');
CREATE TABLE sanction_slots (
    run_id INTEGER NOT NULL,
    slot INTEGER NOT NULL,
    policy TEXT NOT NULL,
    list TEXT NOT NULL,
    rule TEXT NOT NULL,
    reason TEXT,
    citation TEXT,
    record_kind TEXT,
    PRIMARY KEY (run_id, slot)
) WITHOUT ROWID;
INSERT INTO "sanction_slots" VALUES(1,0,'zhengzhou.green_credit@2012','green_credit_blacklist','illegal_discharge_blacklist','存在已查实的违法排污案件','《创新管理机制 强化管理手段努力推动环保工作科学发展》(郑州日报 2012-04-14) 四、(三)',NULL);
INSERT INTO "sanction_slots" VALUES(1,1,'zhengzhou.green_credit@2012','restricted_loans','high_pollution_energy_restricted_loans','属于高污染或高能耗产业','《创新管理机制 强化管理手段努力推动环保工作科学发展》(郑州日报 2012-04-14) 四、(三)',NULL);
CREATE INDEX runs_fingerprints ON runs (input_fingerprint, policy_fingerprint, as_of);
CREATE INDEX runs_stats ON runs (input_stat, policy_fingerprint, as_of);
CREATE INDEX finding_chunks_run ON finding_chunks (run_id);
CREATE VIEW findings AS
    SELECT c.run_id AS run_id, e.value ->> 0 AS uscc, s.policy AS policy, s.rule AS rule, s.kind AS kind,
           e.value ->> 1 AS amount_yuan, e.value ->> 2 AS payer, s.citation AS citation,
           e.value ->> 3 AS case_id, coalesce(e.value ->> 4, 'imposed') AS status,
           nullif(e.value ->> 5, '') AS superseded_by, nullif(e.value ->> 6, 0) AS assessed_in_run,
           coalesce(s.record_kind, CASE WHEN e.value ->> 3 IS NULL THEN 'enterprise' ELSE 'case' END) AS record_kind,
           coalesce(e.value ->> 3, e.value ->> 0) AS record_key,
           coalesce(e.value ->> 7, c.law_note) AS law_note
    FROM finding_chunks c JOIN finding_slots s ON s.run_id = c.run_id AND s.slot = c.slot,
         json_each(c.rows) e;
CREATE INDEX sanction_chunks_run ON sanction_chunks (run_id);
CREATE VIEW sanctions AS
    SELECT c.run_id AS run_id, CASE e.type WHEN 'array' THEN e.value ->> 0 ELSE e.value END AS uscc,
           s.list AS list, s.rule AS rule, s.policy AS policy,
           CASE e.type WHEN 'array' THEN nullif(e.value ->> 1, '') END AS case_id,
           CASE e.type WHEN 'array' THEN e.value ->> 2 END AS start,
           CASE e.type WHEN 'array' THEN e.value ->> 3 END AS planned_end,
           coalesce(s.record_kind, CASE WHEN e.type = 'array' AND nullif(e.value ->> 1, '') IS NOT NULL
                                        THEN 'case' ELSE 'enterprise' END) AS record_kind
    FROM sanction_chunks c JOIN sanction_slots s ON s.run_id = c.run_id AND s.slot = c.slot,
         json_each(c.usccs) e;
CREATE INDEX rejects_run ON rejects (run_id);
CREATE INDEX assessed_case ON assessed (case_id);
CREATE INDEX assessed_run ON assessed (run_id);
CREATE UNIQUE INDEX list_state_open ON list_state (uscc, rule_id, tag) WHERE exit IS NULL;
CREATE INDEX list_state_key ON list_state (uscc, rule_id, tag);
CREATE INDEX list_state_ending ON list_state (planned_end) WHERE exit IS NULL AND planned_end IS NOT NULL;
CREATE INDEX lifts_run ON lifts (run_id);
CREATE VIEW list_entries AS
    SELECT s.id AS id, r.list || '|' || s.uscc || '|' || r.policy || '|' || r.rule || '|' || s.tag AS key,
           r.list AS list, s.uscc AS uscc, r.policy AS policy, t.version AS version, r.rule AS rule,
           s.case_id AS case_id, s.started AS started, s.planned_end AS planned_end, s.ended AS ended,
           s.exit AS exit, s.exit_reason AS exit_reason, t.reason AS reason, t.citation AS citation,
           s.first_run AS first_run, s.last_run AS last_run, s.exit_run AS exit_run
    FROM list_state s JOIN list_rules r ON r.id = s.rule_id JOIN list_texts t ON t.id = s.text_id;
COMMIT;
