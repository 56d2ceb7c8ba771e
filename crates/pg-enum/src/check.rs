//! Reading CHECK lists out of a migration, for the tests that hold an enum to its column.

/// Every `CHECK (<column> IN ('a', 'b', ...))` list for `column` in `sql`, in order of appearance (whitespace and
/// line breaks inside are ignored). A test asserts that each equals the enum's spellings.
pub fn check_lists(sql: &str, column: &str) -> Vec<Vec<String>> {
    let flat = sql.split_whitespace().collect::<Vec<_>>().join(" ");
    let needle = format!("CHECK ({column} IN (");
    let mut lists = Vec::new();
    let mut rest = flat.as_str();
    while let Some(at) = rest.find(&needle) {
        rest = &rest[at + needle.len()..];
        let end = rest.find(')').unwrap_or(rest.len());
        lists.push(
            rest[..end]
                .split(',')
                .map(|v| v.trim().trim_matches('\'').to_owned())
                .collect(),
        );
        rest = &rest[end..];
    }
    lists
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_every_list_of_the_column_and_nothing_else() {
        let sql =
            "CREATE TABLE t (state TEXT CHECK (state IN ('a',\n   'b_c')), kind TEXT CHECK (kind IN ('x')));
                   CREATE INDEX i ON t (id) WHERE state IN ('a');
                   ALTER TABLE u ADD CONSTRAINT u_state CHECK (state IN ('z'));";
        assert_eq!(check_lists(sql, "state"), vec![vec!["a", "b_c"], vec!["z"]]);
        assert_eq!(check_lists(sql, "kind"), vec![vec!["x"]]);
        assert!(check_lists(sql, "status").is_empty());
    }
}
