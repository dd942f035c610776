//! The microphone and the camera: what the person asked for against what is running.
//!
//! Opening a device takes a while (`getUserMedia` may ask the person), and the person may
//! change their mind meanwhile: camera on then off, on twice, another microphone picked,
//! "test" then "join". Each opening is a numbered [`Request`]; when it comes back, it is
//! used only if it is still the one wanted, and stopped otherwise. At most one opening per
//! kind is in flight, so nothing runs that nobody asked for.

use super::{Command, DeviceError, DeviceKind, Request};

/// One kind of device.
#[derive(Debug, Default)]
pub struct Slot {
    /// The running device in use, and its id as the browser reports it.
    current: Option<(Request, Option<String>)>,
    /// The opening in flight, if any.
    opening: Option<Request>,
    /// Whether a device of this kind is wanted at all.
    wanted: bool,
    /// The device the person picked (`None`: the browser's default).
    choice: Option<String>,
}

/// What became of an opening.
#[derive(Debug, PartialEq, Eq)]
pub enum Opened {
    /// Now in use.
    Used,
    /// Nobody wants it any more; stopped.
    Stopped,
}

impl Slot {
    /// Whether a device of this kind is running and in use.
    pub fn running(&self) -> bool {
        self.current.is_some()
    }

    /// Whether a device of this kind is wanted.
    pub fn wanted(&self) -> bool {
        self.wanted
    }

    /// The device in use, or the one picked for the next opening.
    pub fn device(&self) -> Option<&str> {
        self.current.as_ref().and_then(|(_, id)| id.as_deref()).or(self.choice.as_deref())
    }

    /// Wants a device of this kind running: opens one unless one runs or is opening.
    pub fn want(&mut self, kind: DeviceKind, next: &mut u32, out: &mut Vec<Command>) {
        self.wanted = true;
        if self.current.is_none() && self.opening.is_none() {
            self.open(kind, next, out);
        }
    }

    /// Wants none: stops the running one; one still opening is stopped when it comes.
    pub fn release(&mut self, out: &mut Vec<Command>) {
        self.wanted = false;
        self.opening = None;
        if let Some((request, _)) = self.current.take() {
            out.push(Command::StopDevice { request });
        }
    }

    /// The person picked `device`: a running device is replaced by it (the old one keeps
    /// going until the new one is there).
    pub fn pick(&mut self, kind: DeviceKind, device: String, next: &mut u32, out: &mut Vec<Command>) {
        let same = self.current.as_ref().is_some_and(|(_, id)| id.as_deref() == Some(device.as_str()));
        self.choice = Some(device);
        if self.wanted && !same {
            self.open(kind, next, out);
        }
    }

    fn open(&mut self, kind: DeviceKind, next: &mut u32, out: &mut Vec<Command>) {
        *next += 1;
        let request = Request(*next);
        self.opening = Some(request);
        out.push(Command::OpenDevice { request, kind, device: self.choice.clone() });
    }

    /// `request` came back running `device`.
    pub fn opened(&mut self, request: Request, device: Option<String>, out: &mut Vec<Command>) -> Opened {
        if self.opening != Some(request) {
            out.push(Command::StopDevice { request });
            return Opened::Stopped;
        }
        self.opening = None;
        if !self.wanted {
            out.push(Command::StopDevice { request });
            return Opened::Stopped;
        }
        out.push(Command::UseDevice { request });
        if let Some((old, _)) = self.current.replace((request, device)) {
            out.push(Command::StopDevice { request: old });
        }
        Opened::Used
    }

    /// `request` failed. Returns whether it was this slot's opening in flight; the choice
    /// falls back to what runs.
    pub fn failed(&mut self, request: Request) -> bool {
        if self.opening != Some(request) {
            return false;
        }
        self.opening = None;
        self.choice = self.current.as_ref().and_then(|(_, id)| id.clone());
        if self.current.is_none() {
            self.wanted = false;
        }
        true
    }

    /// Whether `request` is this slot's opening in flight.
    pub fn is_opening(&self, request: Request) -> bool {
        self.opening == Some(request)
    }
}

/// What goes wrong with a device, as the browser says it.
impl DeviceError {
    /// Reads a `getUserMedia` rejection's `DOMException.name`.
    pub fn from_name(name: &str) -> Self {
        match name {
            "NotAllowedError" | "SecurityError" => Self::Denied,
            "NotFoundError" => Self::Missing,
            "OverconstrainedError" => Self::Gone,
            "NotReadableError" | "AbortError" => Self::Busy,
            other => Self::Other(other.to_owned()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn camera_on_then_off_before_it_opens_stops_it_when_it_comes() {
        let (mut camera, mut next, mut out) = (Slot::default(), 0, Vec::new());
        camera.want(DeviceKind::Camera, &mut next, &mut out);
        camera.release(&mut out);
        assert_eq!(camera.opened(Request(1), None, &mut out), Opened::Stopped);
        assert!(!camera.running());
        assert_eq!(out.last(), Some(&Command::StopDevice { request: Request(1) }));
    }

    #[test]
    fn on_twice_opens_once() {
        let (mut camera, mut next, mut out) = (Slot::default(), 0, Vec::new());
        camera.want(DeviceKind::Camera, &mut next, &mut out);
        camera.want(DeviceKind::Camera, &mut next, &mut out);
        assert_eq!(out.len(), 1);
    }

    #[test]
    fn a_picked_device_replaces_the_running_one_and_a_stale_opening_is_stopped() {
        let (mut mic, mut next, mut out) = (Slot::default(), 0, Vec::new());
        mic.want(DeviceKind::Microphone, &mut next, &mut out);
        mic.opened(Request(1), Some("a".into()), &mut out);
        mic.pick(DeviceKind::Microphone, "b".into(), &mut next, &mut out);
        mic.pick(DeviceKind::Microphone, "c".into(), &mut next, &mut out);
        out.clear();
        assert_eq!(mic.opened(Request(2), Some("b".into()), &mut out), Opened::Stopped);
        assert_eq!(mic.opened(Request(3), Some("c".into()), &mut out), Opened::Used);
        assert_eq!(
            out,
            [
                Command::StopDevice { request: Request(2) },
                Command::UseDevice { request: Request(3) },
                Command::StopDevice { request: Request(1) }
            ]
        );
        assert_eq!(mic.device(), Some("c"));
    }

    #[test]
    fn a_failed_pick_keeps_the_running_device() {
        let (mut mic, mut next, mut out) = (Slot::default(), 0, Vec::new());
        mic.want(DeviceKind::Microphone, &mut next, &mut out);
        mic.opened(Request(1), Some("a".into()), &mut out);
        mic.pick(DeviceKind::Microphone, "gone".into(), &mut next, &mut out);
        assert!(mic.failed(Request(2)));
        assert!(mic.running());
        assert_eq!(mic.device(), Some("a"));
    }
}
