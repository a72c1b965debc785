//! Wall-clock readings the protocols need, kept out of the sans-IO cores.

use chrono::{Datelike, Local, Timelike};
use smsgw_codecs::wire::Timestamp;

/// The local time as the `MMDDhhmmss` number carriers use in logins and
/// SGIP sequences. Carrier gateways run on China Standard Time; run smsgw
/// with `TZ=Asia/Shanghai` when the host is on another zone.
pub fn carrier_timestamp() -> Timestamp {
    let now = Local::now();
    Timestamp::from_parts(
        now.month(),
        now.day(),
        now.hour(),
        now.minute(),
        now.second(),
    )
}
