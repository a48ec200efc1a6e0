//! The listing benchmark's table: each figure, its ratio to its baseline in the
//! same run, and the target that ratio is held to.

/// What a ratio must reach.
#[derive(Clone, Copy)]
pub enum Goal {
    AtLeast(f64),
    AtMost(f64),
}

impl Goal {
    fn describe(self, ratio: f64) -> String {
        let (met, text) = match self {
            Goal::AtLeast(bound) => (ratio >= bound, format!("≥ {bound}")),
            Goal::AtMost(bound) => (ratio <= bound, format!("≤ {bound}")),
        };
        format!("{text} ({})", if met { "met" } else { "missed" })
    }
}

#[derive(Default)]
pub struct Report {
    rows: Vec<[String; 4]>,
    notes: Vec<String>,
    /// Pages compared with the generator's record.
    pub checked: usize,
}

impl Report {
    pub fn value(&mut self, name: &str, value: f64) {
        self.rows.push([name.into(), format!("{value:.3}"), String::new(), String::new()]);
    }

    pub fn ratio(&mut self, name: &str, value: f64, ratio: f64, goal: Goal) {
        self.rows.push([name.into(), format!("{value:.3}"), format!("{ratio:.2}×"), goal.describe(ratio)]);
    }

    pub fn note(&mut self, note: String) {
        eprintln!("note: {note}");
        self.notes.push(note);
    }

    pub fn print(&self) {
        println!(
            "# checked: {} pages, each equal to the generator's record (ids, order, log_index, `more`)",
            self.checked
        );
        for note in &self.notes {
            println!("# {note}");
        }
        println!("\n| measure | value | ratio | target |\n|---|---:|---:|---|");
        for [name, value, ratio, target] in &self.rows {
            println!("| {name} | {value} | {ratio} | {target} |");
        }
    }
}

pub fn p50(samples: &[f64]) -> f64 {
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted.get(sorted.len() / 2).copied().unwrap_or(f64::NAN)
}
