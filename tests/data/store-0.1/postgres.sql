--
-- PostgreSQL database dump
--

\restrict Astc1Mk6vnwTIazZvuRIib3DC7j8wZlaEnaV00609HfHUcSyJjcmhhFxZfMPDR3

-- Dumped from database version 15.18 (Debian 15.18-0+deb12u1)
-- Dumped by pg_dump version 15.18 (Debian 15.18-0+deb12u1)

SET statement_timeout = 0;
SET lock_timeout = 0;
SET idle_in_transaction_session_timeout = 0;
SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
SELECT pg_catalog.set_config('search_path', '', false);
SET check_function_bodies = false;
SET xmloption = content;
SET client_min_messages = warning;
SET row_security = off;

SET default_tablespace = '';

SET default_table_access_method = heap;

--
-- Name: aliases; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.aliases (
    artifact_id integer NOT NULL,
    name character varying(128) NOT NULL,
    version_id integer NOT NULL
);


--
-- Name: api_keys; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.api_keys (
    id integer NOT NULL,
    user_id integer NOT NULL,
    key_id character varying(32) NOT NULL,
    hash character varying(128) NOT NULL,
    created_at double precision NOT NULL,
    revoked_at double precision
);


--
-- Name: api_keys_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.api_keys_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: api_keys_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.api_keys_id_seq OWNED BY public.api_keys.id;


--
-- Name: artifacts; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.artifacts (
    id integer NOT NULL,
    project_id integer NOT NULL,
    name character varying(128) NOT NULL,
    type character varying(128) NOT NULL,
    description text,
    created_at double precision NOT NULL
);


--
-- Name: artifacts_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.artifacts_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: artifacts_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.artifacts_id_seq OWNED BY public.artifacts.id;


--
-- Name: chunk_claims; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.chunk_claims (
    chunk_id integer NOT NULL,
    entity_id integer NOT NULL,
    claimed_at double precision NOT NULL
);


--
-- Name: chunks; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.chunks (
    id integer NOT NULL,
    digest character varying(71) NOT NULL,
    size bigint NOT NULL,
    state character varying(16) NOT NULL,
    touched_at double precision NOT NULL
);


--
-- Name: chunks_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.chunks_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: chunks_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.chunks_id_seq OWNED BY public.chunks.id;


--
-- Name: entities; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.entities (
    id integer NOT NULL,
    name character varying(128) NOT NULL,
    kind character varying(8) NOT NULL,
    is_admin boolean NOT NULL,
    created_at double precision NOT NULL
);


--
-- Name: entities_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.entities_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: entities_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.entities_id_seq OWNED BY public.entities.id;


--
-- Name: manifests; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.manifests (
    version_id integer NOT NULL,
    body bytea NOT NULL
);


--
-- Name: memberships; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.memberships (
    team_id integer NOT NULL,
    user_id integer NOT NULL,
    role character varying(8) NOT NULL
);


--
-- Name: meta; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.meta (
    key character varying(64) NOT NULL,
    value character varying(256) NOT NULL
);


--
-- Name: projects; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.projects (
    id integer NOT NULL,
    entity_id integer NOT NULL,
    name character varying(128) NOT NULL,
    visibility character varying(8) NOT NULL,
    created_at double precision NOT NULL
);


--
-- Name: projects_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.projects_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: projects_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.projects_id_seq OWNED BY public.projects.id;


--
-- Name: runs; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.runs (
    id integer NOT NULL,
    project_id integer NOT NULL,
    run_id character varying(128) NOT NULL,
    name character varying(256),
    group_name character varying(256),
    job_type character varying(128),
    config json NOT NULL,
    summary json NOT NULL,
    state character varying(16) NOT NULL,
    sweep_id character varying(128),
    created_at double precision NOT NULL,
    updated_at double precision NOT NULL
);


--
-- Name: runs_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.runs_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: runs_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.runs_id_seq OWNED BY public.runs.id;


--
-- Name: sweeps; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.sweeps (
    id integer NOT NULL,
    project_id integer NOT NULL,
    sweep_id character varying(128) NOT NULL,
    config json NOT NULL,
    created_at double precision NOT NULL
);


--
-- Name: sweeps_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.sweeps_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: sweeps_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.sweeps_id_seq OWNED BY public.sweeps.id;


--
-- Name: tags; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.tags (
    version_id integer NOT NULL,
    name character varying(128) NOT NULL
);


--
-- Name: uses; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.uses (
    run_pk integer NOT NULL,
    version_id integer NOT NULL,
    used_at double precision NOT NULL
);


--
-- Name: version_chunks; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.version_chunks (
    version_id integer NOT NULL,
    chunk_id integer NOT NULL
);


--
-- Name: versions; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.versions (
    id integer NOT NULL,
    artifact_id integer NOT NULL,
    number integer,
    state character varying(16) NOT NULL,
    digest character varying(71) NOT NULL,
    size bigint NOT NULL,
    file_count integer NOT NULL,
    description text,
    metadata json NOT NULL,
    created_at double precision NOT NULL,
    run_pk integer,
    expires_at double precision,
    distributed_id character varying(256),
    base_number integer
);


--
-- Name: versions_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.versions_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: versions_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.versions_id_seq OWNED BY public.versions.id;


--
-- Name: api_keys id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.api_keys ALTER COLUMN id SET DEFAULT nextval('public.api_keys_id_seq'::regclass);


--
-- Name: artifacts id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.artifacts ALTER COLUMN id SET DEFAULT nextval('public.artifacts_id_seq'::regclass);


--
-- Name: chunks id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.chunks ALTER COLUMN id SET DEFAULT nextval('public.chunks_id_seq'::regclass);


--
-- Name: entities id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.entities ALTER COLUMN id SET DEFAULT nextval('public.entities_id_seq'::regclass);


--
-- Name: projects id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.projects ALTER COLUMN id SET DEFAULT nextval('public.projects_id_seq'::regclass);


--
-- Name: runs id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.runs ALTER COLUMN id SET DEFAULT nextval('public.runs_id_seq'::regclass);


--
-- Name: sweeps id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.sweeps ALTER COLUMN id SET DEFAULT nextval('public.sweeps_id_seq'::regclass);


--
-- Name: versions id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.versions ALTER COLUMN id SET DEFAULT nextval('public.versions_id_seq'::regclass);


--
-- Data for Name: aliases; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.aliases (artifact_id, name, version_id) FROM stdin;
1	best	1
1	prod	2
\.


--
-- Data for Name: api_keys; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.api_keys (id, user_id, key_id, hash, created_at, revoked_at) FROM stdin;
\.


--
-- Data for Name: artifacts; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.artifacts (id, project_id, name, type, description, created_at) FROM stdin;
1	1	mnist	dataset	raw images	1796182651.210948
2	1	net	model	\N	1796182651.297274
3	1	shards	dataset	\N	1796182651.387264
\.


--
-- Data for Name: chunk_claims; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.chunk_claims (chunk_id, entity_id, claimed_at) FROM stdin;
\.


--
-- Data for Name: chunks; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.chunks (id, digest, size, state, touched_at) FROM stdin;
1	blake3:127e564d49547c437b38d9f23fdbd5a52544cb8386a66ddfe0caeff84b9b8bea	65536	live	0
2	blake3:22f71e7cdac5a29249607a5ab1d5044c66269012bb6efa6d9b33caf9401805ec	1001	live	1796182651.2137744
3	blake3:2611055ac7d2d6558f9ed03c4765128c369b2823bc527767beac75013e5271b5	35	live	1796182651.2736776
4	blake3:348acca18988360c9ae395bb4133c90710a9b6f8cbf510f979e7cdc960cd83cd	67	live	1796182651.2137744
5	blake3:4b694fa6468140836e2f43625aca1150ec72032dc23a12e13416ca026c647ef3	18	live	0
6	blake3:df73d72923b846308b5deaee8e37e5ed5f9816afc827d8bc6688d06339cad4ce	65536	live	0
7	blake3:ea44922bdc8317f788e73a71f2173688415fbb352c00d234dff69bdbbf6e218f	3392	live	0
8	blake3:eb59f9047f4a36387108742e116cea7c3621e6f7372eb72472549d051e93539a	65536	live	0
9	blake3:f1c77ebad07573deed7d665c0b58e8c50e04a455b6610da64a2f348e1bf891e5	1002	live	0
10	blake3:fb51dea7be6af92d0705fd5ca3bc5786fa51bc940de4dde10b3879afb6538a57	1000	live	0
11	blake3:035c2a7b9ae526c468e841a6d5b53dffe2585ce9a82cd74384a607856fa10bdb	1500	live	0
12	blake3:1d8e627e26e58689600d49b7732631060b6dfb96741d49d7a51a0d703613e0b8	18928	live	1796182651.29868
13	blake3:527b6ea506a80fd917aed59f1e614b596df392b97bfcff7f58256e14ab6089d9	65536	live	1796182651.29868
14	blake3:8745d66dc16f22bd8c6112a59979d8d26a08c23eb9e22673af2e9f60f28a7cea	65536	live	1796182651.29868
15	blake3:cbeb7950aa328c4cf8da7a717ddd45858f5b9e40d3ec6b8d3ad329b887d789bd	8	live	0
16	blake3:e374c919e7ce92b0cceabca29f1d8e2a7ad85d6e35825dd1276a0bbf49bb624e	5	live	1796182651.391221
\.


--
-- Data for Name: entities; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.entities (id, name, kind, is_admin, created_at) FROM stdin;
1	alice	user	t	1796182651.1525693
\.


--
-- Data for Name: manifests; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.manifests (version_id, body) FROM stdin;
1	\\x789ca554cb6e23390cfc973e07b6243e24f9570639901495782776827467667607f9f7a5b3984d0631b087ed53bfc42a16abf873998fcf27d996c322cfdb5c7727391fa7afdb72b37cf3e7f5f8785e0ef966f1f3f67cf47539fc5cf478b7d3e3f972bb1efff2e550d2e5ba59c6f1ee72f0b0e8837c75381897dc7277a3990b1b76d7966d4a6d358e7065cbac9426d20403444e529223a215e9d63428d8fdcbf96ba07ef9f2aba82bf5d913d689020cade6d42a16cf99cda51a04a8f3ac508b6b2d580b611f89b27720e8b2dc3011f0edcdbf1547fc3c6ae905b421436a4ac3c5bd3954271f347bcb2cd35aa9a3a931b7361203749381e69f2be61207190776c26a0855a18d3e0bcca1838482129a36682ccc634c4f263e6743eddad4af707441eca5e8b006b9ceda9a57909a67c915820f669aaa40c5521a0570ccc95d87ea648f21cce526e896dbdbd798e4e969fb73b7fdd8de07786576323360d73ea37bc9c2923061c8023ccc3af6aea685accbb09c8bd678291da20dcc130a9725908e2789a2fbb47b3adfbd83e5ab5e994a39ca57f550ba97916aa239c804d4a8369e425903380dc7313ca790b47699ca044da87ec0cb9ff0f267bc5266cd5e6d8891c4ecb173aa42a279508ae93017ee293a53f6293cba42743783406e89dc3ee0954f78e54a7fd96a7595688cc26eeea30e66b2a4d4bc19254f2848a4cc390d619432019b679dad67a70bde83a83fac3b5bbfbda3015de98d734e44627594114e6ab3fb4860589972691191aea5958bb2a5560ecde3574a193c9eb3be613dfb5cf78f2fdb7a1cfebb5972fd8ca89112c87d848b95fbccc4234d6f448924632a561cc15b846b0a800a84a611398a50d5943a2e6f80516f1e1ffcb0dfefb7d3d3fececffbefbf7108f3fed89ee5c2c5eeddbeae2fa738638fe72dd6d3f2fa8bf6cbf9edab8fff26de3576094fb4e6a5b649d8605c123e5a50850408d14b8fbcf52e95c828028f928a94c20a19fe17f1f3e3d9ff61fd72deadf71f98b6cf4c3184c57022720b451b44ae27c6b28b314bcee11f8ba50a655801c9b10e016321065336c6ea132e43dd441fc2b05bdabdddedfe581f3fac71bea24f58502c005a6f019922e40e9d5431471c7a8ae52b5d7936d34939cd5efb25531661b290d046b4f7fa3726ffe0d6
2	\\x789c6d93dd8e533b0c85df655f573d71fc97f455d05cd8893354cc14d416c401cdbbe322c18c98eeab682bf1b7bcbcfc735b9fcfcf76dd0e9b9dafebb27fb6d371c5e5baedb66f71be1c3f9fb603ecb6385dcfc7b86c879f9b1f1ff77e3cdd8e97e38fd80eb5dcbedd368f8fb78787cd9fec53e0614885063d062fa832a8873718cbb4693e119501e25c16f1c2814452ac9620a251ad8fe629617cfc7afa94d40f1ffe140de7be7a215d6428d8144a53aa0120234c07263464296a0dd74a5a99fa2c0cd191b1dbb613669487dddf8a332f4fadbda237122ccd798645b4400d8ec9ab37105ba3559dcd87486bb308621f3669c4fb8a50f3a1d0a4cea483501ddbecabe29a3ed93825d1f0864d4c64ce156558acd5c8bb378f3b1ac3887aad3e4743d0a5ad85a229ac0a8aa98780973b721da5cc8a34d792eed37d49e410d6b64bb9f5e1e12527f9fce5fafffefafdfa3ac03bb3b30548ddfbcaee0d4cac50a1b405658ed1a9771f5e79749b03a0bae64feb986d102cac52b7241d9f2d8bfe57f65f4e8faf30b89b95e50c595e3dd2e95e67d1c26bf230f4c1da64198327b8cca039034a5aaadd960b6333d6373cf887c7f778053953a6de2df8964d6991269a4c76c6742f2a371ed1add53195b09149d1c62924d9d3dff0eabbfeea9dfe60a8865b36c619b788a9538447714ef2e012858c985d04ca3421ab0ba905f86a1d826fbc27f378baecc7e5db2b0df93dab0a4061b6a1b3ce4c525b3d66c1412a0cb5e58a74afadde9cadaa929ee7552e80698582ff669dbf9ef6978f6fba6aef39e4d269a5566940a561466d51ee5f920dd2f618b9e758e7a868901b8a943b6a25ed16d258b8bdbcbcfc02345f4baf
3	\\x789c658fcd6edd400885df65d6560433e667fc2ad15d8061122b8d235d3badd4e8be7b9d45bb298b238138df81af323eeeef7696a5d8fd1cc7d3bbeddbc8e32c53f999f763fbd8cb8253c9fdbc6f7994e5abfccaede5f53c9e7cdbbfdb63fb9dd70ac1555389ede5dbbc14ff616fd996a61ea1002dd636fb10472243f51649d98780ccc6844a6e0297ae490846d51d67c636ae33d6d7cffded4a7e7efe0b5599299863451eb57ae8ca88d5a877e9a151d940d7dad27bd6cad26cd42b8b61543559d3cac4448d6fd33f2255714e23605318d1512c83fac0649c9d3ac768bd7a171feb1832482b71e26ccea03dfaff440c4dae92959394b53340ccdd455ae586c0e017d33bcb8cd73cc4080d42a05d5f27b89609b557bddd1e8fc71fe3ca78b5
5	\\x789c15cb510e83201045d1bdbc6f6b044584ddccc0d090566d80344d8d7b6ffdbcc9b907d25e566af0a0d252ed57da7292dad0e12da5e67d83571d646b254b853ff0fac3dbd0b74fbbaae6afc09b0e31dfafcd839ff490d1cb68a7e094131bc4691e4210e240da251517d164292e26ce329a459b1895b6330dcc6972ccb39e04e779fe00395e326c
\.


--
-- Data for Name: memberships; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.memberships (team_id, user_id, role) FROM stdin;
\.


--
-- Data for Name: meta; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.meta (key, value) FROM stdin;
schema_version	1
\.


--
-- Data for Name: projects; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.projects (id, entity_id, name, visibility, created_at) FROM stdin;
1	1	cv	private	1796182651.1709516
\.


--
-- Data for Name: runs; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.runs (id, project_id, run_id, name, group_name, job_type, config, summary, state, sweep_id, created_at, updated_at) FROM stdin;
1	1	prep1	prep1	\N	prep	{"seed": 1}	{"acc": 0.5}	finished	\N	1796182651.177497	1796182651.2317667
2	1	train1	train1	\N	train	{}	{}	finished	\N	1796182651.242169	1796182651.309065
3	1	w1	w1	g1	shard	{}	{}	finished	\N	1796182651.3701968	1796182651.4017363
\.


--
-- Data for Name: sweeps; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.sweeps (id, project_id, sweep_id, config, created_at) FROM stdin;
\.


--
-- Data for Name: tags; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.tags (version_id, name) FROM stdin;
1	raw
\.


--
-- Data for Name: uses; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.uses (run_pk, version_id, used_at) FROM stdin;
2	1	1796182651.2470717
\.


--
-- Data for Name: version_chunks; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.version_chunks (version_id, chunk_id) FROM stdin;
1	1
1	2
1	3
1	4
1	5
1	6
1	7
1	8
1	9
1	10
2	1
2	3
2	5
2	6
2	7
2	8
2	9
2	10
2	11
3	12
3	13
3	14
5	16
\.


--
-- Data for Name: versions; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.versions (id, artifact_id, number, state, digest, size, file_count, description, metadata, created_at, run_pk, expires_at, distributed_id, base_number) FROM stdin;
1	1	0	committed	blake3:b26d0837d4007d21032cebb8704168e7aa249db30b966379f29b196fcaa0d907	203157	10	raw images	{"rows": 3}	1796182651.214217	1	\N	\N	\N
2	1	1	committed	blake3:a091b9373f1a58f3644df714f6f40fab977c823eaf529bfc3881e86f08abea2f	203555	7	v1	{}	1796182651.2739654	2	\N	\N	\N
3	2	0	committed	blake3:be1148869f9f3d162510b4302633fdcabb880271b539c9d7928461c27c882d86	150000	1	\N	{"layers": [1, 2, 3]}	1796182651.298947	2	\N	\N	\N
4	1	2	deleted	blake3:98953f284090e2f5af19137baa569823cfd1b1a48c46ef91b119a8004c4305bb	203528	7	v1	{}	1796182651.3464108	\N	\N	\N	1
5	3	\N	pending	blake3:cdaf93991ca9162e1ade32569374959fb852cd8579ed903f1c9534724a03b42a	5	1	\N	{}	1796182651.392467	3	\N	g1	\N
\.


--
-- Name: api_keys_id_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.api_keys_id_seq', 1, true);


--
-- Name: artifacts_id_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.artifacts_id_seq', 3, true);


--
-- Name: chunks_id_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.chunks_id_seq', 16, true);


--
-- Name: entities_id_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.entities_id_seq', 1, true);


--
-- Name: projects_id_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.projects_id_seq', 1, true);


--
-- Name: runs_id_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.runs_id_seq', 3, true);


--
-- Name: sweeps_id_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.sweeps_id_seq', 1, true);


--
-- Name: versions_id_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.versions_id_seq', 5, true);


--
-- Name: aliases aliases_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.aliases
    ADD CONSTRAINT aliases_pkey PRIMARY KEY (artifact_id, name);


--
-- Name: api_keys api_keys_key_id_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.api_keys
    ADD CONSTRAINT api_keys_key_id_key UNIQUE (key_id);


--
-- Name: api_keys api_keys_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.api_keys
    ADD CONSTRAINT api_keys_pkey PRIMARY KEY (id);


--
-- Name: artifacts artifacts_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.artifacts
    ADD CONSTRAINT artifacts_pkey PRIMARY KEY (id);


--
-- Name: artifacts artifacts_project_id_name_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.artifacts
    ADD CONSTRAINT artifacts_project_id_name_key UNIQUE (project_id, name);


--
-- Name: chunk_claims chunk_claims_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.chunk_claims
    ADD CONSTRAINT chunk_claims_pkey PRIMARY KEY (chunk_id, entity_id);


--
-- Name: chunks chunks_digest_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.chunks
    ADD CONSTRAINT chunks_digest_key UNIQUE (digest);


--
-- Name: chunks chunks_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.chunks
    ADD CONSTRAINT chunks_pkey PRIMARY KEY (id);


--
-- Name: entities entities_name_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.entities
    ADD CONSTRAINT entities_name_key UNIQUE (name);


--
-- Name: entities entities_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.entities
    ADD CONSTRAINT entities_pkey PRIMARY KEY (id);


--
-- Name: manifests manifests_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.manifests
    ADD CONSTRAINT manifests_pkey PRIMARY KEY (version_id);


--
-- Name: memberships memberships_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.memberships
    ADD CONSTRAINT memberships_pkey PRIMARY KEY (team_id, user_id);


--
-- Name: meta meta_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.meta
    ADD CONSTRAINT meta_pkey PRIMARY KEY (key);


--
-- Name: projects projects_entity_id_name_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.projects
    ADD CONSTRAINT projects_entity_id_name_key UNIQUE (entity_id, name);


--
-- Name: projects projects_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.projects
    ADD CONSTRAINT projects_pkey PRIMARY KEY (id);


--
-- Name: runs runs_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.runs
    ADD CONSTRAINT runs_pkey PRIMARY KEY (id);


--
-- Name: runs runs_project_id_run_id_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.runs
    ADD CONSTRAINT runs_project_id_run_id_key UNIQUE (project_id, run_id);


--
-- Name: sweeps sweeps_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.sweeps
    ADD CONSTRAINT sweeps_pkey PRIMARY KEY (id);


--
-- Name: sweeps sweeps_project_id_sweep_id_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.sweeps
    ADD CONSTRAINT sweeps_project_id_sweep_id_key UNIQUE (project_id, sweep_id);


--
-- Name: tags tags_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.tags
    ADD CONSTRAINT tags_pkey PRIMARY KEY (version_id, name);


--
-- Name: uses uses_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.uses
    ADD CONSTRAINT uses_pkey PRIMARY KEY (run_pk, version_id);


--
-- Name: version_chunks version_chunks_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.version_chunks
    ADD CONSTRAINT version_chunks_pkey PRIMARY KEY (version_id, chunk_id);


--
-- Name: versions versions_artifact_id_number_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.versions
    ADD CONSTRAINT versions_artifact_id_number_key UNIQUE (artifact_id, number);


--
-- Name: versions versions_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.versions
    ADD CONSTRAINT versions_pkey PRIMARY KEY (id);


--
-- Name: aliases_by_version; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX aliases_by_version ON public.aliases USING btree (version_id);


--
-- Name: ix_version_chunks_chunk_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_version_chunks_chunk_id ON public.version_chunks USING btree (chunk_id);


--
-- Name: uses_by_version; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX uses_by_version ON public.uses USING btree (version_id);


--
-- Name: versions_by_artifact_state; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX versions_by_artifact_state ON public.versions USING btree (artifact_id, state);


--
-- Name: versions_by_run; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX versions_by_run ON public.versions USING btree (run_pk);


--
-- Name: aliases aliases_artifact_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.aliases
    ADD CONSTRAINT aliases_artifact_id_fkey FOREIGN KEY (artifact_id) REFERENCES public.artifacts(id);


--
-- Name: aliases aliases_version_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.aliases
    ADD CONSTRAINT aliases_version_id_fkey FOREIGN KEY (version_id) REFERENCES public.versions(id);


--
-- Name: api_keys api_keys_user_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.api_keys
    ADD CONSTRAINT api_keys_user_id_fkey FOREIGN KEY (user_id) REFERENCES public.entities(id) ON DELETE CASCADE;


--
-- Name: artifacts artifacts_project_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.artifacts
    ADD CONSTRAINT artifacts_project_id_fkey FOREIGN KEY (project_id) REFERENCES public.projects(id);


--
-- Name: chunk_claims chunk_claims_chunk_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.chunk_claims
    ADD CONSTRAINT chunk_claims_chunk_id_fkey FOREIGN KEY (chunk_id) REFERENCES public.chunks(id) ON DELETE CASCADE;


--
-- Name: chunk_claims chunk_claims_entity_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.chunk_claims
    ADD CONSTRAINT chunk_claims_entity_id_fkey FOREIGN KEY (entity_id) REFERENCES public.entities(id) ON DELETE CASCADE;


--
-- Name: manifests manifests_version_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.manifests
    ADD CONSTRAINT manifests_version_id_fkey FOREIGN KEY (version_id) REFERENCES public.versions(id);


--
-- Name: memberships memberships_team_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.memberships
    ADD CONSTRAINT memberships_team_id_fkey FOREIGN KEY (team_id) REFERENCES public.entities(id) ON DELETE CASCADE;


--
-- Name: memberships memberships_user_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.memberships
    ADD CONSTRAINT memberships_user_id_fkey FOREIGN KEY (user_id) REFERENCES public.entities(id) ON DELETE CASCADE;


--
-- Name: projects projects_entity_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.projects
    ADD CONSTRAINT projects_entity_id_fkey FOREIGN KEY (entity_id) REFERENCES public.entities(id);


--
-- Name: runs runs_project_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.runs
    ADD CONSTRAINT runs_project_id_fkey FOREIGN KEY (project_id) REFERENCES public.projects(id);


--
-- Name: sweeps sweeps_project_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.sweeps
    ADD CONSTRAINT sweeps_project_id_fkey FOREIGN KEY (project_id) REFERENCES public.projects(id);


--
-- Name: tags tags_version_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.tags
    ADD CONSTRAINT tags_version_id_fkey FOREIGN KEY (version_id) REFERENCES public.versions(id);


--
-- Name: uses uses_run_pk_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.uses
    ADD CONSTRAINT uses_run_pk_fkey FOREIGN KEY (run_pk) REFERENCES public.runs(id);


--
-- Name: uses uses_version_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.uses
    ADD CONSTRAINT uses_version_id_fkey FOREIGN KEY (version_id) REFERENCES public.versions(id);


--
-- Name: version_chunks version_chunks_chunk_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.version_chunks
    ADD CONSTRAINT version_chunks_chunk_id_fkey FOREIGN KEY (chunk_id) REFERENCES public.chunks(id);


--
-- Name: version_chunks version_chunks_version_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.version_chunks
    ADD CONSTRAINT version_chunks_version_id_fkey FOREIGN KEY (version_id) REFERENCES public.versions(id);


--
-- Name: versions versions_artifact_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.versions
    ADD CONSTRAINT versions_artifact_id_fkey FOREIGN KEY (artifact_id) REFERENCES public.artifacts(id);


--
-- Name: versions versions_run_pk_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.versions
    ADD CONSTRAINT versions_run_pk_fkey FOREIGN KEY (run_pk) REFERENCES public.runs(id);


--
-- PostgreSQL database dump complete
--

\unrestrict Astc1Mk6vnwTIazZvuRIib3DC7j8wZlaEnaV00609HfHUcSyJjcmhhFxZfMPDR3

