//! Tests that run the real `tongban` binary as processes: lifecycle, exit
//! codes, and the SIGKILL crash test. A binary of their own, so that they run
//! after the in-process tests and never compete with them for ports.

mod support;

mod check;
mod crash;
mod dev;
mod process;
