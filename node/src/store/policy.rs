//! Consent rules.

use kith_protocol::{ConsentPolicy, ItemPattern, NodeId, PolicyRule, Share, Subject};
use rusqlite::params;

use super::{Result, Store, StoreError};

impl Store {
    /// Add a rule, replacing any rule for the same subject and pattern.
    pub fn put_rule(&self, rule: &PolicyRule) -> Result<()> {
        let (kind, subject) = match &rule.subject {
            Subject::Circle(c) => ("circle", c.clone()),
            Subject::Contact(id) => ("contact", id.to_hex()),
        };
        self.conn().execute(
            "INSERT INTO policy_rules (subject_kind, subject, items, share) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (subject_kind, subject, items) DO UPDATE SET share = excluded.share",
            params![
                kind,
                subject,
                rule.items.to_string(),
                rule.share.wire_code()
            ],
        )?;
        Ok(())
    }

    /// Remove the rule for exactly this subject and pattern; true if there was one.
    pub fn remove_rule(&self, subject: &Subject, items: &ItemPattern) -> Result<bool> {
        let (kind, subject) = match subject {
            Subject::Circle(c) => ("circle", c.clone()),
            Subject::Contact(id) => ("contact", id.to_hex()),
        };
        Ok(self.conn().execute(
            "DELETE FROM policy_rules WHERE subject_kind = ?1 AND subject = ?2 AND items = ?3",
            params![kind, subject, items.to_string()],
        )? > 0)
    }

    pub fn policy(&self) -> Result<ConsentPolicy> {
        let conn = self.read();
        let mut stmt =
            conn.prepare("SELECT subject_kind, subject, items, share FROM policy_rules ORDER BY subject_kind, subject, items")?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, i64>(3)?,
                ))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        let corrupt = |what: String| StoreError::Corrupt(format!("policy rule: {what}"));
        let rules = rows
            .into_iter()
            .map(|(kind, subject, items, share)| {
                let subject = match kind.as_str() {
                    "circle" => Subject::Circle(subject),
                    _ => Subject::Contact(
                        NodeId::from_hex(&subject).ok_or_else(|| corrupt(subject))?,
                    ),
                };
                Ok(PolicyRule {
                    subject,
                    items: ItemPattern::parse(&items).map_err(|e| corrupt(e.to_string()))?,
                    share: Share::ALL
                        .into_iter()
                        .find(|s| i64::from(s.wire_code()) == share)
                        .ok_or_else(|| corrupt(format!("share {share}")))?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(ConsentPolicy::new(rules))
    }
}
