//! Small shared vocabulary: data types and counters indexed by them.
//!
//! Counters are indexed by a fixed [`DataType`] over a fixed struct, never by
//! strings or a global table: what a level counts is visible in its type.

use serde::Serialize;

/// The four kinds of data that move through an accelerator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DataType {
    /// Input activations (ifmap).
    Input,
    /// Weights and biases (filters).
    Weight,
    /// Partial sums.
    Psum,
    /// Output activations (ofmap).
    Output,
}

/// One value per data type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct PerTensor<T> {
    pub input: T,
    pub weight: T,
    pub psum: T,
    pub output: T,
}

impl<T> PerTensor<T> {
    pub fn get_mut(&mut self, t: DataType) -> &mut T {
        match t {
            DataType::Input => &mut self.input,
            DataType::Weight => &mut self.weight,
            DataType::Psum => &mut self.psum,
            DataType::Output => &mut self.output,
        }
    }

    pub fn get(&self, t: DataType) -> &T {
        match t {
            DataType::Input => &self.input,
            DataType::Weight => &self.weight,
            DataType::Psum => &self.psum,
            DataType::Output => &self.output,
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = &T> {
        [&self.input, &self.weight, &self.psum, &self.output].into_iter()
    }
}

/// Reads and writes of one level, in data words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct ReadWrite {
    pub read: u64,
    pub write: u64,
}

impl ReadWrite {
    pub fn total(&self) -> u64 {
        self.read + self.write
    }

    pub fn add(&mut self, other: &ReadWrite) {
        self.read += other.read;
        self.write += other.write;
    }
}

/// Accesses of one memory level, per data type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct LevelAccesses {
    pub by_type: PerTensor<ReadWrite>,
}

impl LevelAccesses {
    pub fn read(&mut self, t: DataType, words: u64) {
        self.by_type.get_mut(t).read += words;
    }

    pub fn write(&mut self, t: DataType, words: u64) {
        self.by_type.get_mut(t).write += words;
    }

    /// Reads and writes over all data types.
    pub fn total(&self) -> ReadWrite {
        let mut sum = ReadWrite::default();
        for rw in self.by_type.iter() {
            sum.add(rw);
        }
        sum
    }

    pub fn add(&mut self, other: &LevelAccesses) {
        for t in [
            DataType::Input,
            DataType::Weight,
            DataType::Psum,
            DataType::Output,
        ] {
            self.by_type.get_mut(t).add(other.by_type.get(t));
        }
    }
}
