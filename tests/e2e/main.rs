//! End-to-end: the real binaries, as a newcomer and an operator run them.

mod embedded;
mod split;
