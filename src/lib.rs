//! smsgw: the logical sending layer between business systems and carrier
//! SMS links.

pub mod adapters;
pub mod cli;
pub mod config;
pub mod engine;
