//! End-to-end: the real binaries, as a newcomer and an operator run them.

mod chaos;
mod cli;
mod deploy;
mod embedded;
mod faults;
mod journey;
mod restart;
mod split;
