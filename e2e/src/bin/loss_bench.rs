//! The packet-loss benchmark (issue 16): how much of a call a listener still hears when the
//! network loses packets. It prints figures and judges none.
//!
//! Run through `bash scripts/loss_bench.sh`, which builds `dist/` as it ships and runs this
//! in the tests' loopback network namespace (the loss is nftables dropping a share of every
//! UDP packet there, [`e2e::PacketLoss`], both directions alike). For each loss level (0,
//! 3, 10 and 20 % unless levels are given as arguments) two fresh Chromium pages call each
//! other through the relay; once the loss is on and the call has settled (`--settle`, 20 s)
//! the benchmark reads each connection's `getStats` at the start and the end of a window
//! (`--seconds`, 30 s) and the page's figures every second in between, and prints per
//! direction:
//!
//! - `concealed`: `concealedSamples` over `totalSamplesReceived` at the listener: the
//!   share of what was played that the decoder had to invent, the loss a person hears;
//! - `network loss`: `packetsLost` over packets sent, at the listener: what the network
//!   lost before any recovery;
//! - `sending`: what the talker sent on the wire, RTP payload, headers and padding
//!   (kbit/s; under loss Chromium's bandwidth probes ride on the audio as padding), the
//!   payload alone (Opus, and RED's copies), and the `maxBitrate` its page set;
//! - `jitter buffer`: the mean wait of a played sample (recovery needs the next packet in
//!   hand, which costs latency);
//! - `codec`: what the talker sends, `red + opus` (RED, RFC 2198, over Opus) or `opus`, and
//!   `fec` / `dtx` when its Opus was asked for in-band FEC / DTX;
//! - `MOS shown`: the mean of the listener's page's `data-mos` over the window, its bars,
//!   and the seconds a quality hint was up.
//!
//! Ana talks (a synthetic voice, [`voice_wav`], looped: talk spurts and short pauses), Bo
//! mostly listens (Chromium's fake microphone: a short beep twice a second and silence),
//! so the two directions show a talker and a listener.

use std::fmt::Write as _;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use e2e::rtp::{AudioCounters, AudioSpan};
use e2e::{Browser, ChromeDriver, Error, PacketLoss, Profile, Relay, Result, meet};

/// The loss levels, %, when none are given.
const LEVELS: [u32; 4] = [0, 3, 10, 20];

/// What the benchmark was asked to do.
struct Plan {
    levels: Vec<u32>,
    settle: Duration,
    window: Duration,
}

impl Plan {
    fn from_args() -> Result<Self> {
        let mut plan = Self { levels: Vec::new(), settle: Duration::from_secs(20), window: Duration::from_secs(30) };
        let mut args = std::env::args().skip(1);
        let usage = || Error::Unexpected("usage: loss-bench [--settle S] [--seconds S] [LOSS %]...".into());
        while let Some(arg) = args.next() {
            let seconds = |value: Option<String>| -> Result<Duration> {
                Ok(Duration::from_secs(value.and_then(|v| v.parse().ok()).ok_or_else(usage)?))
            };
            match arg.as_str() {
                "--settle" => plan.settle = seconds(args.next())?,
                "--seconds" => plan.window = seconds(args.next())?,
                level => plan.levels.push(level.parse().map_err(|_| usage())?),
            }
        }
        if plan.levels.is_empty() {
            plan.levels = LEVELS.into();
        }
        Ok(plan)
    }
}

/// One direction of one call, measured.
struct Direction {
    label: &'static str,
    span: AudioSpan,
    max_kbps: f64,
    codec: String,
    mos: f64,
    bars: f64,
    hint_seconds: u32,
}

#[tokio::main]
async fn main() -> ExitCode {
    e2e::exit_code("loss-bench", run().await)
}

async fn run() -> Result<()> {
    let plan = Plan::from_args()?;
    let voice = tempfile::Builder::new().suffix(".wav").tempfile()?;
    std::fs::write(voice.path(), voice_wav())?;
    let relay = Relay::start(&[]).await?;
    let driver = ChromeDriver::start().await?;

    let mut table = format!(
        "\nAudio under random packet loss (both ways alike), Chromium to Chromium; {} s after the loss began, \
         over {} s; kbit/s on the wire (of it payload).\n{:>5} {:<18} {:>9} {:>12} {:>14} {:>5} {:>7} {:>5} {:>5} {:>5}  {}\n",
        plan.settle.as_secs(),
        plan.window.as_secs(),
        "loss",
        "direction",
        "concealed",
        "network loss",
        "sending",
        "max",
        "buffer",
        "MOS",
        "bars",
        "hint",
        "codec",
    );
    let mut bench = String::new();
    for &level in &plan.levels {
        eprintln!("{level} % loss: calling");
        for d in measure(&driver, &relay, voice.path(), level, &plan).await? {
            writeln!(
                table,
                "{:>4}% {:<18} {:>8.1}% {:>11.1}% {:>14} {:>5.1} {:>5.0}ms {:>5.2} {:>5.1} {:>4}s  {}",
                level,
                d.label,
                d.span.concealed_pct,
                d.span.network_loss_pct,
                format!("{:.1} ({:.1})", d.span.send_kbps, d.span.send_payload_kbps),
                d.max_kbps,
                d.span.jitter_buffer_ms,
                d.mos,
                d.bars,
                d.hint_seconds,
                d.codec,
            )
            .expect("writing to a String");
            writeln!(
                bench,
                "BENCH loss {level} % {}: concealed {:.2} % (silent {:.2} %), network loss {:.2} %, sending {:.1} kbit/s \
                 ({:.1} of it payload, {:.1} packets/s, {:.1} of them resent, maxBitrate {:.1} kbit/s), jitter buffer {:.0} ms, FEC {:.1} packets/s, MOS shown \
                 {:.2} ({:.1} bars, hint {} s of {}), codec {}",
                d.label.replace(' ', "-"),
                d.span.concealed_pct,
                d.span.silent_concealed_pct,
                d.span.network_loss_pct,
                d.span.send_kbps,
                d.span.send_payload_kbps,
                d.span.send_packets_per_s,
                d.span.retransmitted_per_s,
                d.max_kbps,
                d.span.jitter_buffer_ms,
                d.span.fec_packets_per_s,
                d.mos,
                d.bars,
                d.hint_seconds,
                plan.window.as_secs(),
                d.codec,
            )
            .expect("writing to a String");
        }
    }
    print!("{table}\n{bench}");
    Ok(())
}

/// A call between a talking Ana and a listening Bo at `level` % loss: both directions.
async fn measure(
    driver: &ChromeDriver,
    relay: &Relay,
    voice: &std::path::Path,
    level: u32,
    plan: &Plan,
) -> Result<[Direction; 2]> {
    let talker =
        Profile { flags: vec![format!("--use-file-for-fake-audio-capture={}", voice.display())], ..Profile::default() };
    let (ana, bo) = (driver.browser_as(talker).await?, driver.browser(&[]).await?);
    for browser in [&ana, &bo] {
        browser.watch_connections().await?;
    }
    meet(relay, &ana, &bo).await?;
    bo.wait_state("connected").await?;
    ana.wait_state("connected").await?;
    let loss = (level > 0).then(|| PacketLoss::start(level)).transpose()?;
    tokio::time::sleep(plan.settle).await;

    let before = [AudioCounters::read(&ana).await?, AudioCounters::read(&bo).await?];
    let start = Instant::now();
    let mut shown = [Shown::default(), Shown::default()];
    while start.elapsed() < plan.window {
        tokio::time::sleep(Duration::from_secs(1)).await;
        for (page, shown) in [&ana, &bo].into_iter().zip(&mut shown) {
            shown.read(page).await?;
        }
        eprintln!(
            "{level} % loss, t={:>2}s: Ana shows MOS {:.2}, sets {:.0} kbit/s; Bo shows MOS {:.2}, sets {:.0} kbit/s",
            start.elapsed().as_secs(),
            shown[0].last_mos,
            shown[0].max_kbps,
            shown[1].last_mos,
            shown[1].max_kbps
        );
    }
    let after = [AudioCounters::read(&ana).await?, AudioCounters::read(&bo).await?];
    drop(loss);
    ana.close().await?;
    bo.close().await?;

    // A direction is heard at the listener and sent by the talker.
    let direction = |label, talker: usize, listener: usize| Direction {
        label,
        span: {
            let sent = AudioSpan::between(&before[talker], &after[talker]);
            AudioSpan {
                send_kbps: sent.send_kbps,
                send_payload_kbps: sent.send_payload_kbps,
                send_packets_per_s: sent.send_packets_per_s,
                retransmitted_per_s: sent.retransmitted_per_s,
                ..AudioSpan::between(&before[listener], &after[listener])
            }
        },
        max_kbps: shown[talker].max_kbps,
        codec: codec_line(&after[talker]),
        mos: shown[listener].mean_mos(),
        bars: shown[listener].mean_bars(),
        hint_seconds: shown[listener].hint_seconds,
    };
    Ok([direction("Ana->Bo (talks)", 0, 1), direction("Bo->Ana (listens)", 1, 0)])
}

/// What the talker sends, in short: `red + opus` or `opus`, then `fec` and `dtx` when
/// its Opus runs them (the parameters it was asked to send with), e.g. `red + opus fec dtx`.
fn codec_line(talker: &AudioCounters) -> String {
    let mut line = String::from(if talker.send_codec.starts_with("audio/red") { "red + opus" } else { "opus" });
    for (parameter, name) in [("useinbandfec=1", " fec"), ("usedtx=1", " dtx")] {
        if talker.opus_fmtp.split(';').any(|p| p.trim() == parameter) {
            line.push_str(name);
        }
    }
    line
}

/// What a page showed of its one peer, second by second.
#[derive(Default)]
struct Shown {
    mos: Vec<f64>,
    bars: Vec<f64>,
    last_mos: f64,
    max_kbps: f64,
    hint_seconds: u32,
}

impl Shown {
    async fn read(&mut self, page: &Browser) -> Result<()> {
        let stats = page.stats().await?;
        let number = |key: &str| stats.get(key).and_then(|v| v.parse::<f64>().ok()).unwrap_or_default();
        self.last_mos = number("mos");
        self.mos.push(self.last_mos);
        self.bars.push(number("bars"));
        self.max_kbps = number("max-bitrate-kbps");
        if page.shows("hint").await? {
            self.hint_seconds += 1;
        }
        Ok(())
    }

    fn mean_mos(&self) -> f64 {
        mean(&self.mos)
    }

    fn mean_bars(&self) -> f64 {
        mean(&self.bars)
    }
}

fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len().max(1) as f64
}

/// Eight seconds of a synthetic voice as a 48 kHz mono 16-bit WAV, for Chromium's
/// `--use-file-for-fake-audio-capture` (which loops it): voiced syllables (a glottal-like
/// harmonic series on a gliding pitch, shaped by two formants) at about five a second, in
/// talk spurts of one to two seconds with pauses between, like a person talking. The same
/// bytes every run.
fn voice_wav() -> Vec<u8> {
    const RATE: u32 = 48_000;
    const SECONDS: u32 = 8;
    // (start, end) of each talk spurt, seconds.
    const SPURTS: [(f64, f64); 5] = [(0.0, 1.4), (1.7, 3.5), (3.8, 4.6), (5.3, 6.9), (7.2, 7.8)];
    let mut values = Vec::with_capacity((RATE * SECONDS) as usize);
    let mut phase = 0.0f64;
    let mut noise = 0x2545_f491_u32;
    for n in 0..RATE * SECONDS {
        let t = f64::from(n) / f64::from(RATE);
        let talking = SPURTS.iter().find(|(start, end)| t >= *start && t < *end);
        let value = match talking {
            None => 0.0,
            Some((start, _)) => {
                let pitch = 130.0 + 30.0 * (t * 1.3).sin() + 15.0 * (t * 4.7).sin();
                phase += pitch / f64::from(RATE);
                let cycle = phase.fract();
                // Syllables: a raised cosine at 5 per second, from the spurt's start.
                let syllable = 0.5 - 0.5 * (std::f64::consts::TAU * 5.0 * (t - start)).cos();
                // Harmonics under two formants that move from syllable to syllable.
                let vowel = ((t - start) * 5.0).floor();
                let formants = [500.0 + 250.0 * (vowel * 1.7).sin().abs(), 1500.0 + 600.0 * (vowel * 2.3).cos().abs()];
                let mut voiced = 0.0;
                for k in 1..=40 {
                    let frequency = pitch * f64::from(k);
                    let gain: f64 =
                        formants.iter().map(|f| 1.0 / (1.0 + ((frequency - f) / 150.0).powi(2))).sum::<f64>()
                            / f64::from(k).sqrt();
                    voiced += gain * (std::f64::consts::TAU * f64::from(k) * cycle).sin();
                }
                noise ^= noise << 13;
                noise ^= noise >> 17;
                noise ^= noise << 5;
                let hiss = (f64::from(noise) / f64::from(u32::MAX) - 0.5) * 0.05;
                syllable * (0.12 * voiced + hiss)
            }
        };
        values.push(value);
    }
    // Peaks at half of full scale, a voice well above the microphone's noise.
    let peak = values.iter().fold(0.0f64, |peak, v| peak.max(v.abs())).max(f64::MIN_POSITIVE);
    let samples: Vec<i16> = values.iter().map(|v| (v / peak * 0.5 * 32_767.0) as i16).collect();
    let data_bytes = samples.len() as u32 * 2;
    let mut wav = Vec::with_capacity(44 + data_bytes as usize);
    wav.extend_from_slice(b"RIFF");
    wav.extend_from_slice(&(36 + data_bytes).to_le_bytes());
    wav.extend_from_slice(b"WAVEfmt ");
    wav.extend_from_slice(&16u32.to_le_bytes());
    wav.extend_from_slice(&1u16.to_le_bytes()); // PCM
    wav.extend_from_slice(&1u16.to_le_bytes()); // mono
    wav.extend_from_slice(&RATE.to_le_bytes());
    wav.extend_from_slice(&(RATE * 2).to_le_bytes());
    wav.extend_from_slice(&2u16.to_le_bytes());
    wav.extend_from_slice(&16u16.to_le_bytes());
    wav.extend_from_slice(b"data");
    wav.extend_from_slice(&data_bytes.to_le_bytes());
    for sample in samples {
        wav.extend_from_slice(&sample.to_le_bytes());
    }
    wav
}
