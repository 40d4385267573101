//! Node settings that shape aggregate answers (spec §9.10), stored in the settings table.
//!
//! | key | default | meaning |
//! | --- | --- | --- |
//! | `min-cohort` | 5 | when answering: fewer co-members it can vouch for than this and it adds its whole noise alone; when asking: withhold below this many members |
//! | `epsilon` | 1.0 | the ε this node requires when it answers inside an aggregate; `off` = no noise required |
//! | `asks-per-day` | 20 | asks (plain and aggregate) answered per asker per 24 h; more are declined visibly |
//! | `epsilon-per-day` | 4 | privacy loss granted to each asker per 24 h: the ε of every aggregate answered is charged to it; over it, asks are declined like `asks-per-day` |
//! | `advertise` | the listen address | the addresses (`host:port`, up to 4) in this node's card and invites: where contacts reach it; changing it sends contacts the new card (spec §8.6) |

use kith_protocol::aggregation::messages::MilliEpsilon;

use crate::store::{Setting, Store, StoreError};

pub const DEFAULT_MIN_COHORT: u32 = 5;
pub const DEFAULT_EPSILON: MilliEpsilon = 1000;
pub const DEFAULT_ASKS_PER_DAY: u32 = 20;
/// ε 4 per asker per day, in thousandths.
pub const DEFAULT_EPSILON_PER_DAY: MilliEpsilon = 4000;

/// The aggregation settings in force.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AggSettings {
    pub min_cohort: u32,
    pub epsilon: Option<MilliEpsilon>,
    pub asks_per_day: u32,
    /// Privacy loss granted to one asker per 24 h, in thousandths of ε (spec §9.10).
    pub epsilon_per_day: MilliEpsilon,
}

/// The setting the owner named, or a line saying which exist.
pub fn owner_setting(key: &str) -> Result<Setting, String> {
    Setting::owner_key(key.trim()).ok_or_else(|| {
        let known: Vec<&str> = Setting::OWNER.iter().map(|s| s.key()).collect();
        format!("unknown setting {key:?} (known: {})", known.join(", "))
    })
}

/// Check and normalise a value for an aggregation setting; the error is one line for a
/// person. `advertise` has its own check (in `card_updates`); the node's own records
/// are not the owner's to set.
pub fn validate(setting: Setting, value: &str) -> Result<String, String> {
    let v = value.trim();
    match setting {
        Setting::MinCohort => match v.parse::<u32>() {
            Ok(n) if (2..=10_000).contains(&n) => Ok(n.to_string()),
            _ => Err("min-cohort must be a whole number from 2 to 10000".into()),
        },
        Setting::AsksPerDay => match v.parse::<u32>() {
            Ok(n) if n <= 100_000 => Ok(n.to_string()),
            _ => Err("asks-per-day must be a whole number from 0 to 100000".into()),
        },
        Setting::EpsilonPerDay => match v.parse::<f64>() {
            Ok(e) if e.is_finite() && (0.0..=1000.0).contains(&e) => {
                Ok(format_epsilon(Some((e * 1000.0).round() as MilliEpsilon)))
            }
            _ => Err("epsilon-per-day must be a number from 0 to 1000".into()),
        },
        Setting::Epsilon => {
            if v.eq_ignore_ascii_case("off") {
                return Ok("off".into());
            }
            match parse_epsilon(v) {
                Some(m) => Ok(format_epsilon(Some(m))),
                None => Err("epsilon must be a number from 0.01 to 10, or off".into()),
            }
        }
        Setting::Advertise
        | Setting::Announced
        | Setting::Name
        | Setting::Listen
        | Setting::Api
        | Setting::NodeId => Err(format!("{} is not an aggregation setting", setting.key())),
    }
}

/// ε text to thousandths, 0.01..=10.
pub fn parse_epsilon(v: &str) -> Option<MilliEpsilon> {
    let e: f64 = v.trim().parse().ok()?;
    (e.is_finite() && (0.01..=10.0).contains(&e)).then(|| (e * 1000.0).round() as MilliEpsilon)
}

pub fn format_epsilon(e: Option<MilliEpsilon>) -> String {
    match e {
        None => "off".into(),
        Some(m) => {
            let s = format!("{:.3}", m as f64 / 1000.0);
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        }
    }
}

/// The settings in force, with defaults for anything unset.
pub fn load(store: &Store) -> Result<AggSettings, StoreError> {
    let get = |k: Setting| store.setting(k);
    Ok(AggSettings {
        min_cohort: get(Setting::MinCohort)?
            .and_then(|v| v.parse().ok())
            .unwrap_or(DEFAULT_MIN_COHORT),
        epsilon: match get(Setting::Epsilon)?.as_deref() {
            Some("off") => None,
            Some(v) => parse_epsilon(v).or(Some(DEFAULT_EPSILON)),
            None => Some(DEFAULT_EPSILON),
        },
        asks_per_day: get(Setting::AsksPerDay)?
            .and_then(|v| v.parse().ok())
            .unwrap_or(DEFAULT_ASKS_PER_DAY),
        epsilon_per_day: get(Setting::EpsilonPerDay)?
            .and_then(|v| v.parse::<f64>().ok())
            .map(|e| (e * 1000.0).round() as MilliEpsilon)
            .unwrap_or(DEFAULT_EPSILON_PER_DAY),
    })
}

/// Current values of the owner's settings as (key, value) text, defaults included.
pub fn list(store: &Store) -> Result<Vec<(String, String)>, StoreError> {
    let s = load(store)?;
    let mut all = Vec::with_capacity(Setting::OWNER.len());
    for setting in Setting::OWNER {
        let value = match setting {
            Setting::Advertise => store
                .setting(Setting::Announced)?
                .unwrap_or_default()
                .replace(',', ", "),
            Setting::MinCohort => s.min_cohort.to_string(),
            Setting::Epsilon => format_epsilon(s.epsilon),
            Setting::AsksPerDay => s.asks_per_day.to_string(),
            Setting::EpsilonPerDay => format_epsilon(Some(s.epsilon_per_day)),
            Setting::Announced
            | Setting::Name
            | Setting::Listen
            | Setting::Api
            | Setting::NodeId => continue,
        };
        all.push((setting.key().to_string(), value));
    }
    Ok(all)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values() {
        assert_eq!(validate(Setting::Epsilon, "0.5").unwrap(), "0.5");
        assert_eq!(validate(Setting::Epsilon, "OFF").unwrap(), "off");
        assert!(validate(Setting::Epsilon, "0").is_err());
        assert!(validate(Setting::Epsilon, "nan").is_err());
        assert!(validate(Setting::MinCohort, "1").is_err());
        assert!(validate(Setting::Name, "Eve").is_err());
        assert!(owner_setting("colour").unwrap_err().contains("min-cohort"));
        assert!(owner_setting("node_id").is_err());
        assert_eq!(owner_setting("asks-per-day"), Ok(Setting::AsksPerDay));
        assert_eq!(format_epsilon(Some(1000)), "1");
        assert_eq!(format_epsilon(Some(250)), "0.25");
        let store = Store::open_in_memory().unwrap();
        assert_eq!(
            load(&store).unwrap(),
            AggSettings {
                min_cohort: 5,
                epsilon: Some(1000),
                asks_per_day: 20,
                epsilon_per_day: 4000,
            }
        );
        assert_eq!(validate(Setting::EpsilonPerDay, "4").unwrap(), "4");
        assert_eq!(validate(Setting::EpsilonPerDay, "0.5").unwrap(), "0.5");
        assert!(validate(Setting::EpsilonPerDay, "-1").is_err());
        store.set_setting(Setting::Epsilon, "off").unwrap();
        assert_eq!(load(&store).unwrap().epsilon, None);
    }
}
