//! Carrier gateway simulators (ISMG, SMGW, SMG) built on `smsgw-codecs`.
