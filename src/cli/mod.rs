//! Operators' CLI commands (clap `Args` + `run`).
