//! The test tone: a continuous-phase sine, produced block by block.

use std::f64::consts::TAU;

/// Peak amplitude, about -12 dBFS: clearly audible, far from clipping after AAC.
const AMPLITUDE: f64 = 0.25;

/// A sine oscillator whose phase carries over from one block to the next, so frame
/// boundaries never click.
#[derive(Debug, Clone)]
pub(crate) struct Tone {
    /// Current phase in radians, kept in `[0, TAU)` so precision never degrades on
    /// long runs.
    phase: f64,
    /// Phase advance per sample.
    step: f64,
}

impl Tone {
    /// A tone of `frequency_hz` sampled at `sample_rate` Hz, starting at phase zero.
    pub(crate) fn new(frequency_hz: f64, sample_rate: u32) -> Self {
        Self {
            phase: 0.0,
            step: TAU * frequency_hz / f64::from(sample_rate),
        }
    }

    /// Writes the next `out.len()` samples.
    pub(crate) fn fill(&mut self, out: &mut [f32]) {
        for sample in out {
            *sample = (AMPLITUDE * self.phase.sin()) as f32;
            self.phase += self.step;
            if self.phase >= TAU {
                self.phase -= TAU;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_join_without_a_phase_jump() {
        let mut whole = vec![0.0f32; 2048];
        Tone::new(1000.0, 48_000).fill(&mut whole);

        let mut tone = Tone::new(1000.0, 48_000);
        let mut first = vec![0.0f32; 1024];
        let mut second = vec![0.0f32; 1024];
        tone.fill(&mut first);
        tone.fill(&mut second);
        let joined: Vec<f32> = first.into_iter().chain(second).collect();
        for (a, b) in whole.iter().zip(&joined) {
            assert!((a - b).abs() < 1e-6);
        }
    }

    #[test]
    fn frequency_and_level_are_right() {
        let mut samples = vec![0.0f32; 48_000];
        Tone::new(1000.0, 48_000).fill(&mut samples);
        // One second of 1 kHz crosses zero upwards 1000 times (the first at t=0 is not
        // a crossing from below).
        let rising = samples
            .windows(2)
            .filter(|w| w[0] < 0.0 && w[1] >= 0.0)
            .count();
        assert!((999..=1000).contains(&rising), "{rising}");
        let peak = samples.iter().fold(0.0f32, |m, s| m.max(s.abs()));
        assert!((peak - 0.25).abs() < 1e-3, "{peak}");
    }
}
