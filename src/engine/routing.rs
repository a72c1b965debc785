//! Routing: recipient number → carrier (number-segment table) → link
//! (smooth weighted round robin over the carrier's links that are up).

use std::collections::BTreeMap;

use super::types::Carrier;

/// Number-segment table: longest matching prefix of the national number wins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NumberPlan {
    /// Sorted by prefix length, longest first.
    prefixes: Vec<(String, Carrier)>,
}

/// Mainland China mobile number segments (2024 allocation, incl. MVNO 170x).
/// 4-digit entries override their 3-digit parent (1349 is Telecom, not Mobile).
pub const CHINA_SEGMENTS: &[(&str, Carrier)] = &[
    ("134", Carrier::Mobile),
    ("135", Carrier::Mobile),
    ("136", Carrier::Mobile),
    ("137", Carrier::Mobile),
    ("138", Carrier::Mobile),
    ("139", Carrier::Mobile),
    ("147", Carrier::Mobile),
    ("148", Carrier::Mobile),
    ("150", Carrier::Mobile),
    ("151", Carrier::Mobile),
    ("152", Carrier::Mobile),
    ("157", Carrier::Mobile),
    ("158", Carrier::Mobile),
    ("159", Carrier::Mobile),
    ("165", Carrier::Mobile),
    ("172", Carrier::Mobile),
    ("178", Carrier::Mobile),
    ("182", Carrier::Mobile),
    ("183", Carrier::Mobile),
    ("184", Carrier::Mobile),
    ("187", Carrier::Mobile),
    ("188", Carrier::Mobile),
    ("195", Carrier::Mobile),
    ("197", Carrier::Mobile),
    ("198", Carrier::Mobile),
    ("1440", Carrier::Mobile),
    ("1703", Carrier::Mobile),
    ("1705", Carrier::Mobile),
    ("1706", Carrier::Mobile),
    ("130", Carrier::Unicom),
    ("131", Carrier::Unicom),
    ("132", Carrier::Unicom),
    ("145", Carrier::Unicom),
    ("146", Carrier::Unicom),
    ("155", Carrier::Unicom),
    ("156", Carrier::Unicom),
    ("166", Carrier::Unicom),
    ("167", Carrier::Unicom),
    ("171", Carrier::Unicom),
    ("175", Carrier::Unicom),
    ("176", Carrier::Unicom),
    ("185", Carrier::Unicom),
    ("186", Carrier::Unicom),
    ("196", Carrier::Unicom),
    ("1704", Carrier::Unicom),
    ("1707", Carrier::Unicom),
    ("1708", Carrier::Unicom),
    ("1709", Carrier::Unicom),
    ("133", Carrier::Telecom),
    ("1349", Carrier::Telecom),
    ("149", Carrier::Telecom),
    ("153", Carrier::Telecom),
    ("162", Carrier::Telecom),
    ("173", Carrier::Telecom),
    ("174", Carrier::Telecom),
    ("177", Carrier::Telecom),
    ("180", Carrier::Telecom),
    ("181", Carrier::Telecom),
    ("189", Carrier::Telecom),
    ("190", Carrier::Telecom),
    ("191", Carrier::Telecom),
    ("193", Carrier::Telecom),
    ("199", Carrier::Telecom),
    ("1700", Carrier::Telecom),
    ("1701", Carrier::Telecom),
    ("1702", Carrier::Telecom),
];

impl Default for NumberPlan {
    fn default() -> Self {
        NumberPlan::new(CHINA_SEGMENTS.iter().map(|(p, c)| ((*p).to_owned(), *c)))
    }
}

impl NumberPlan {
    pub fn new(entries: impl IntoIterator<Item = (String, Carrier)>) -> Self {
        let mut prefixes: Vec<(String, Carrier)> = entries.into_iter().collect();
        prefixes.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then_with(|| a.0.cmp(&b.0)));
        prefixes.dedup_by(|a, b| a.0 == b.0);
        NumberPlan { prefixes }
    }

    /// The default table with `overrides` (prefix → carrier) layered on top.
    pub fn with_overrides(overrides: &BTreeMap<String, Carrier>) -> Self {
        let mut m: BTreeMap<String, Carrier> = CHINA_SEGMENTS
            .iter()
            .map(|(p, c)| ((*p).to_owned(), *c))
            .collect();
        m.extend(overrides.iter().map(|(k, v)| (k.clone(), *v)));
        NumberPlan::new(m)
    }

    /// Carrier of a normalised national number.
    pub fn carrier_of(&self, number: &str) -> Option<Carrier> {
        self.prefixes
            .iter()
            .find(|(p, _)| number.starts_with(p.as_str()))
            .map(|(_, c)| *c)
    }
}

/// One link as the router sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct RouteLink {
    name: String,
    carrier: Carrier,
    weight: i64,
    current: i64,
    up: bool,
}

/// Picks a link for a carrier: smooth weighted round robin (nginx) over the
/// links that are up, so weights 3:1 give A A B A, not A A A B.
#[derive(Debug, Clone, Default)]
pub struct Router {
    links: Vec<RouteLink>,
}

impl Router {
    /// `(name, carrier, weight)`; links start down until [`Router::set_up`].
    pub fn new(links: impl IntoIterator<Item = (String, Carrier, u32)>) -> Self {
        Router {
            links: links
                .into_iter()
                .map(|(name, carrier, w)| RouteLink {
                    name,
                    carrier,
                    weight: i64::from(w.max(1)),
                    current: 0,
                    up: false,
                })
                .collect(),
        }
    }

    pub fn set_up(&mut self, name: &str, up: bool) {
        for l in self.links.iter_mut().filter(|l| l.name == name) {
            l.up = up;
            l.current = 0;
        }
    }

    pub fn is_up(&self, name: &str) -> bool {
        self.links.iter().any(|l| l.name == name && l.up)
    }

    /// Any link configured for `carrier`, up or not.
    pub fn serves(&self, carrier: Carrier) -> bool {
        self.links.iter().any(|l| l.carrier == carrier)
    }

    pub fn pick(&mut self, carrier: Carrier) -> Option<&str> {
        let mut total = 0;
        let mut best: Option<usize> = None;
        for i in 0..self.links.len() {
            let l = &mut self.links[i];
            if l.carrier != carrier || !l.up {
                continue;
            }
            l.current += l.weight;
            total += l.weight;
            let cur = l.current;
            if best.is_none_or(|b| cur > self.links[b].current) {
                best = Some(i);
            }
        }
        let best = best?;
        self.links[best].current -= total;
        Some(self.links[best].name.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn number_plan_longest_prefix_wins() {
        let p = NumberPlan::default();
        assert_eq!(p.carrier_of("13800138000"), Some(Carrier::Mobile));
        assert_eq!(p.carrier_of("13412345678"), Some(Carrier::Mobile));
        assert_eq!(p.carrier_of("13491234567"), Some(Carrier::Telecom));
        assert_eq!(p.carrier_of("18612345678"), Some(Carrier::Unicom));
        assert_eq!(p.carrier_of("17071234567"), Some(Carrier::Unicom));
        assert_eq!(p.carrier_of("19912345678"), Some(Carrier::Telecom));
        assert_eq!(p.carrier_of("12012345678"), None);
    }

    #[test]
    fn number_plan_overrides_apply() {
        let mut o = BTreeMap::new();
        o.insert("138".to_owned(), Carrier::Unicom);
        let p = NumberPlan::with_overrides(&o);
        assert_eq!(p.carrier_of("13800138000"), Some(Carrier::Unicom));
        assert_eq!(p.carrier_of("13900138000"), Some(Carrier::Mobile));
    }

    fn router() -> Router {
        let mut r = Router::new([
            ("a".to_owned(), Carrier::Mobile, 3),
            ("b".to_owned(), Carrier::Mobile, 1),
            ("u".to_owned(), Carrier::Unicom, 1),
        ]);
        for n in ["a", "b", "u"] {
            r.set_up(n, true);
        }
        r
    }

    #[test]
    fn weighted_round_robin_is_smooth() {
        let mut r = router();
        let picks: Vec<String> = (0..8)
            .map(|_| r.pick(Carrier::Mobile).unwrap().to_owned())
            .collect();
        assert_eq!(picks, ["a", "a", "b", "a", "a", "a", "b", "a"]);
    }

    #[test]
    fn down_links_are_skipped() {
        let mut r = router();
        r.set_up("a", false);
        for _ in 0..5 {
            assert_eq!(r.pick(Carrier::Mobile), Some("b"));
        }
        r.set_up("b", false);
        assert_eq!(r.pick(Carrier::Mobile), None);
        assert!(r.serves(Carrier::Mobile));
        assert!(!r.serves(Carrier::Telecom));
        assert_eq!(r.pick(Carrier::Unicom), Some("u"));
    }
}
