//! Human-readable formatting shared by the CLI and the demo.

use kith_protocol::app::NamedEndorsement;

/// `YYYY-MM-DD` for Unix seconds (UTC), without a date library.
pub fn date(unix: u64) -> String {
    let days = (unix / 86_400) as i64;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    format!("{:04}-{:02}-{:02}", if m <= 2 { y + 1 } else { y }, m, d)
}

/// `YYYY-MM-DD HH:MM` (UTC).
pub fn date_time(unix: u64) -> String {
    format!(
        "{} {:02}:{:02}",
        date(unix),
        (unix / 3600) % 24,
        (unix / 60) % 60
    )
}

/// "★★★★☆" for a rating.
pub fn stars(rating: Option<u8>) -> String {
    match rating {
        Some(r) => (1..=5).map(|i| if i <= r { '★' } else { '☆' }).collect(),
        None => String::new(),
    }
}

/// One line for a named endorsement.
pub fn named_line(n: &NamedEndorsement) -> String {
    let e = &n.endorsement;
    let mut s = format!("{} owns {} × {}", n.name, e.count, e.item);
    if e.rating.is_some() {
        s.push_str(&format!("  {}", stars(e.rating)));
    }
    if let Some(note) = &e.note {
        s.push_str(&format!("  \"{note}\""));
    }
    s
}

/// "1 contact", "2 contacts".
pub fn plural(n: u32, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// "Bo", "Bo and Cai", "Bo, Cai and Dee".
pub fn and_list(names: &[String]) -> String {
    match names {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

/// Names carried by more than one node.
pub fn duplicate_names<'a>(
    people: impl Iterator<Item = (&'a String, kith_protocol::NodeId)>,
) -> Vec<String> {
    let mut by_name: std::collections::BTreeMap<&String, std::collections::BTreeSet<_>> =
        Default::default();
    for (name, id) in people {
        by_name.entry(name).or_default().insert(id);
    }
    by_name
        .into_iter()
        .filter(|(_, ids)| ids.len() > 1)
        .map(|(name, _)| name.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(date(0), "1970-01-01");
        assert_eq!(date(951_782_400), "2000-02-29");
        assert_eq!(date_time(1_795_478_400 + 3_660), "2026-11-24 01:01");
        let names = |n: &[&str]| n.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(and_list(&names(&["Bo"])), "Bo");
        assert_eq!(and_list(&names(&["Bo", "Cai", "Dee"])), "Bo, Cai and Dee");
    }
}
