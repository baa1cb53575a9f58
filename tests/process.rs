//! The real `tongban` binary as processes.
