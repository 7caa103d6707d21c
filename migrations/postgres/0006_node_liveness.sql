-- Node liveness: a dead node's deliveries move to the others within seconds
-- rather than when its leases run out. Every node renews its row every
-- fifth of --node-timeout, stamped with the database's clock (the nodes'
-- clocks are never compared); a node whose row is older than --node-timeout
-- is marked dead (dead_at) by a live node, and from then on every lease
-- naming it is free to claim: no delivery row is rewritten at the death,
-- whatever the dead node held. A node that finds its own row marked knows
-- it was taken for dead, drops what it held and goes on under a new name.
-- Marks are forgotten once no lease of theirs can still run.
CREATE TABLE nodes (
    id         TEXT COLLATE "C" PRIMARY KEY,
    started_at BIGINT NOT NULL,
    last_seen  BIGINT NOT NULL,
    dead_at    BIGINT
);
