//! smsgw: the logical sending layer between business systems and carrier
//! SMS links.
pub mod session;
