//! Small shared vocabulary: data types and counters indexed by them.
//!
//! Counters are indexed by a fixed [`DataType`] over a fixed struct, never by
//! strings or a global table: what a level counts is visible in its type.

use serde::{Deserialize, Serialize};

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

impl DataType {
    pub const ALL: [DataType; 4] = [
        DataType::Input,
        DataType::Weight,
        DataType::Psum,
        DataType::Output,
    ];
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

// ---- MAC precisions (shared by numerics, which gives them meaning, and
// arch, which prices them) ----

/// The word length an operand (or the output) is used at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "u32", into = "u32")]
pub enum Width {
    /// The high byte of the 16-bit word.
    W8,
    /// The whole 16-bit word.
    W16,
}

impl Width {
    /// Bits moved and used: 8 or 16.
    pub fn bits(self) -> u32 {
        match self {
            Width::W8 => 8,
            Width::W16 => 16,
        }
    }
}

impl TryFrom<u32> for Width {
    type Error = String;
    fn try_from(bits: u32) -> Result<Self, String> {
        match bits {
            8 => Ok(Width::W8),
            16 => Ok(Width::W16),
            _ => Err(format!("{bits} bits; valid: 8 or 16")),
        }
    }
}

impl From<Width> for u32 {
    fn from(w: Width) -> u32 {
        w.bits()
    }
}

impl std::fmt::Display for Width {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.bits())
    }
}

/// The precision of a MAC: input width x weight width. Written `IxW`
/// (`16x8` is a 16-bit input times an 8-bit weight), as SPEC does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct MacMode {
    pub input: Width,
    pub weight: Width,
}

impl MacMode {
    pub const FULL: MacMode = MacMode::new(Width::W16, Width::W16);
    pub const I16_W8: MacMode = MacMode::new(Width::W16, Width::W8);
    pub const I8_W16: MacMode = MacMode::new(Width::W8, Width::W16);
    pub const HALF: MacMode = MacMode::new(Width::W8, Width::W8);
    /// The four modes, 16x16 first.
    pub const ALL: [MacMode; 4] = [
        MacMode::FULL,
        MacMode::I16_W8,
        MacMode::I8_W16,
        MacMode::HALF,
    ];

    pub const fn new(input: Width, weight: Width) -> Self {
        MacMode { input, weight }
    }

    /// Index into per-mode tables, in [`MacMode::ALL`] order.
    pub fn index(self) -> usize {
        match (self.input, self.weight) {
            (Width::W16, Width::W16) => 0,
            (Width::W16, Width::W8) => 1,
            (Width::W8, Width::W16) => 2,
            (Width::W8, Width::W8) => 3,
        }
    }
}

impl std::fmt::Display for MacMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}x{}", self.input, self.weight)
    }
}

impl std::str::FromStr for MacMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("`{s}` is not a MAC precision; valid: 16x16, 16x8, 8x16, 8x8");
        let (i, w) = s.split_once('x').ok_or_else(bad)?;
        let width = |t: &str| match t.trim() {
            "8" => Ok(Width::W8),
            "16" => Ok(Width::W16),
            _ => Err(bad()),
        };
        Ok(MacMode::new(width(i)?, width(w)?))
    }
}

/// MAC counts of one layer (or any group of MACs of one mode).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct MacCounts {
    /// MACs whose operands (in the bytes used) are both non-zero.
    pub nonzero: u64,
    /// MACs with a zero operand.
    pub zero: u64,
}
