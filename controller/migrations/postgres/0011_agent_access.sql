-- Controller-to-agent credentials and the per-app API access switch.

-- The secret the controller presents on this node's agent API (made by the agent, sent in
-- its heartbeats). Kept in clear: the controller must present it. NULL until the node's
-- first heartbeat that carries one; the controller then uses the shared node token.
ALTER TABLE nodes ADD COLUMN agent_token TEXT;

-- 1 when the app's containers may reach the controller's and the agents' API ports (the
-- agents' nftables tables drop that traffic otherwise). `paas apps:access-api`.
ALTER TABLE apps ADD COLUMN api_access BIGINT NOT NULL DEFAULT 0;
