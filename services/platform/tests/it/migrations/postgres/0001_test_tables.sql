-- A stand-in service's state (items) and a stand-in consumer's effects.
CREATE TABLE items (id BIGINT PRIMARY KEY);
CREATE TABLE effects (id BIGSERIAL PRIMARY KEY, item BIGINT NOT NULL);
