-- Node liveness: a dead node's deliveries move to the others within seconds
-- rather than when its leases run out. Every node renews its row every
-- fifth of --node-timeout, stamped with the database's clock (the nodes'
-- clocks never compared); a node whose row is older than --node-timeout is
-- dead, and a live node deletes the row and releases its leases in one
-- transaction. A node that finds its own row gone knows it was taken for
-- dead and drops what it held.
CREATE TABLE nodes (
    id         TEXT COLLATE "C" PRIMARY KEY,
    started_at BIGINT NOT NULL,
    last_seen  BIGINT NOT NULL
);
