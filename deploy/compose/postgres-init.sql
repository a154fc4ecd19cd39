-- One database per service: they share nothing but Kafka.
CREATE DATABASE throughcare_referrals;
CREATE DATABASE throughcare_sharing;
CREATE DATABASE throughcare_indicators;
