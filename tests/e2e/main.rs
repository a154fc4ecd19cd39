//! End-to-end: the real binaries, as a newcomer and an operator run them.

mod cli;
mod deploy;
mod embedded;
mod journey;
mod restart;
mod split;
