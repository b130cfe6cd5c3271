//! What is wrong with a configuration, each thing with the variable, flag or file it comes
//! from, collected so that every problem is reported at once rather than the first alone.

use std::fmt;

/// One thing wrong, and where it comes from: a variable's name, a flag, a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Problem {
    /// Where to fix it: the variable (or flag) the operator sets.
    pub(crate) place: String,
    what: String,
}

impl Problem {
    pub(crate) fn new(place: impl Into<String>, what: impl Into<String>) -> Self {
        Problem {
            place: place.into(),
            what: what.into(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.place, self.what)
    }
}

/// The problems found while deriving a plan. A role that starts with any of them fails
/// with all of them, as `--check-config` lists them.
#[derive(Debug, Default)]
pub(crate) struct Problems(Vec<Problem>);

impl Problems {
    /// Records a problem.
    pub(crate) fn add(&mut self, place: impl Into<String>, what: impl Into<String>) {
        self.0.push(Problem::new(place, what));
    }

    /// The value of `result`, or `None` with its error recorded under `place` as `what`
    /// says it.
    pub(crate) fn take<T, E>(
        &mut self,
        place: &str,
        result: Result<T, E>,
        what: impl FnOnce(E) -> String,
    ) -> Option<T> {
        result.map_err(|e| self.add(place, what(e))).ok()
    }

    /// `value` when nothing was recorded; else every problem. `value` is `None` only when
    /// a problem stopped a part of it being derived, so that case is covered too.
    pub(crate) fn or<T>(self, value: Option<T>) -> Result<T, Problems> {
        match value {
            Some(value) if self.0.is_empty() => Ok(value),
            _ => Err(self),
        }
    }

    /// The problems, in the order they were found.
    pub(crate) fn into_vec(self) -> Vec<Problem> {
        self.0
    }
}

/// One line, for a role that fails to start: `N configuration problems: A: …; B: …`.
impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0.len();
        write!(
            f,
            "{n} configuration problem{}: ",
            if n == 1 { "" } else { "s" }
        )?;
        for (i, problem) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{problem}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Problems {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plan_is_had_only_without_problems() {
        let mut problems = Problems::default();
        let taken = problems.take("A", Err::<u8, _>("broken"), |e| format!("is {e}"));
        assert_eq!(taken, None);
        problems.add("B", "missing");
        assert_eq!(
            problems.to_string(),
            "2 configuration problems: A: is broken; B: missing"
        );
        assert!(problems.or(Some(1)).is_err());
        assert_eq!(Problems::default().or(Some(1)).ok(), Some(1));
        assert!(Problems::default().or(None::<u8>).is_err());
    }
}
