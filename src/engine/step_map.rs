//! A map keyed by step index for the few entries in flight at once: the
//! weights staged ahead of the array (at most the fetcher's lookahead) and
//! the sub-passes whose outputs are on their way to the GLB.
//!
//! Entries sit in a short vector searched from the end: no hashing, which
//! was a measurable share of a step (SipHash per insert, lookup and
//! removal, several times a step).

/// Values keyed by step, few at a time.
#[derive(Debug, Clone)]
pub(super) struct StepMap<T> {
    entries: Vec<(usize, T)>,
}

impl<T> Default for StepMap<T> {
    fn default() -> Self {
        StepMap {
            entries: Vec::new(),
        }
    }
}

impl<T> StepMap<T> {
    fn position(&self, step: usize) -> Option<usize> {
        self.entries.iter().rposition(|&(s, _)| s == step)
    }

    /// Sets `step`'s value, replacing the one it had.
    pub(super) fn insert(&mut self, step: usize, value: T) {
        match self.position(step) {
            Some(i) => self.entries[i].1 = value,
            None => self.entries.push((step, value)),
        }
    }

    pub(super) fn get(&self, step: usize) -> Option<&T> {
        self.position(step).map(|i| &self.entries[i].1)
    }

    pub(super) fn get_mut(&mut self, step: usize) -> Option<&mut T> {
        self.position(step).map(|i| &mut self.entries[i].1)
    }

    /// Takes `step`'s value out.
    pub(super) fn remove(&mut self, step: usize) -> Option<T> {
        self.position(step).map(|i| self.entries.swap_remove(i).1)
    }
}

#[cfg(test)]
mod tests {
    use super::StepMap;

    #[test]
    fn a_step_map_keeps_one_value_per_step() {
        let mut m = StepMap::default();
        m.insert(4, 'a');
        m.insert(7, 'b');
        m.insert(4, 'c');
        assert_eq!(
            (m.get(4), m.get(7), m.get(5)),
            (Some(&'c'), Some(&'b'), None)
        );
        if let Some(v) = m.get_mut(7) {
            *v = 'd';
        }
        assert_eq!(m.remove(7), Some('d'));
        assert_eq!((m.remove(7), m.get(4)), (None, Some(&'c')));
        assert_eq!(m.remove(4), Some('c'));
        assert_eq!(m.get(4), None);
    }
}
