//! Every string the person sees, in English and Chinese.
//!
//! One struct with a field per string, and one value of it per language: a string missing
//! in one language is a compile error, and no literal text lives outside this file.

use leptos::prelude::*;
use shared::agent::{InApp, Os};

/// A language of the UI.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lang {
    /// English.
    En,
    /// Simplified Chinese.
    Zh,
}

impl Lang {
    /// The language for a BCP 47 tag such as `navigator.language` (`zh-CN`, `en-US`...).
    pub fn from_tag(tag: &str) -> Self {
        if tag.get(..2).is_some_and(|p| p.eq_ignore_ascii_case("zh")) { Self::Zh } else { Self::En }
    }

    /// The browser's preferred language.
    pub fn from_browser() -> Self {
        let tag = web_sys::window().and_then(|w| w.navigator().language()).unwrap_or_default();
        Self::from_tag(&tag)
    }

    /// The other language, for the switch.
    pub fn other(self) -> Self {
        match self {
            Self::En => Self::Zh,
            Self::Zh => Self::En,
        }
    }

    /// The `lang` attribute value.
    pub fn tag(self) -> &'static str {
        match self {
            Self::En => "en",
            Self::Zh => "zh-CN",
        }
    }

    /// The strings of this language.
    pub fn text(self) -> &'static Text {
        match self {
            Self::En => &EN,
            Self::Zh => &ZH,
        }
    }
}

/// The UI language, shared through context.
#[derive(Clone, Copy)]
pub struct UiLang(pub RwSignal<Lang>);

/// The strings of the current language; re-read inside reactive closures.
pub fn text() -> &'static Text {
    expect_context::<UiLang>().0.get().text()
}

impl Text {
    /// The name of a chat app, as people of this language call it.
    pub fn app(&self, app: InApp) -> &'static str {
        match app {
            InApp::WeChat => self.app_wechat,
            InApp::Qq => self.app_qq,
            InApp::Weibo => self.app_weibo,
            InApp::DingTalk => self.app_dingtalk,
            InApp::Alipay => self.app_alipay,
            InApp::TikTok => self.app_tiktok,
            InApp::Messenger => self.app_messenger,
            InApp::Facebook => self.app_facebook,
            InApp::Instagram => self.app_instagram,
            InApp::Line => self.app_line,
        }
    }

    /// The two steps out of an app's browser on `os`: where the menu is, which item.
    pub fn guide_steps(&self, os: Os) -> [&'static str; 2] {
        match os {
            Os::Ios => [self.guide_ios_menu, self.guide_ios_open],
            Os::Android => [self.guide_android_menu, self.guide_android_open],
            Os::Other => [self.guide_other_menu, self.guide_other_open],
        }
    }
}

/// Every string of the UI.
#[allow(missing_docs)] // The field names say what each string is.
pub struct Text {
    pub app_name: &'static str,
    pub switch_language: &'static str,
    pub tagline: &'static str,
    pub how_it_works: &'static str,
    pub create_room: &'static str,
    pub share_label: &'static str,
    pub copy: &'static str,
    pub copied: &'static str,
    pub join: &'static str,
    pub join_again: &'static str,
    pub mute: &'static str,
    pub unmute: &'static str,
    pub leave: &'static str,
    pub new_room: &'static str,
    pub state_idle: &'static str,
    pub state_waiting: &'static str,
    pub state_connecting: &'static str,
    pub state_connected: &'static str,
    pub state_reconnecting: &'static str,
    pub state_failed: &'static str,
    pub state_ended: &'static str,
    pub guest: &'static str,
    pub speaking: &'static str,
    pub you_are_muted: &'static str,
    pub tap_to_hear: &'static str,
    pub peer_left: &'static str,
    pub mic_denied: &'static str,
    pub mic_denied_fix: &'static str,
    pub no_mic: &'static str,
    pub no_mic_fix: &'static str,
    pub mic_busy: &'static str,
    pub mic_busy_fix: &'static str,
    pub insecure: &'static str,
    pub insecure_fix: &'static str,
    pub no_webrtc: &'static str,
    pub no_webrtc_fix: &'static str,
    pub relay_unreachable: &'static str,
    pub relay_unreachable_fix: &'static str,
    pub relay_lost: &'static str,
    pub relay_lost_fix: &'static str,
    pub room_full: &'static str,
    pub room_full_fix: &'static str,
    pub bad_room: &'static str,
    pub bad_room_fix: &'static str,
    pub outdated: &'static str,
    pub outdated_fix: &'static str,
    pub relay_busy: &'static str,
    pub relay_busy_fix: &'static str,
    pub peer_unreachable: &'static str,
    pub peer_unreachable_fix: &'static str,
    pub unexpected: &'static str,
    pub unexpected_fix: &'static str,
    pub not_found: &'static str,
    pub test_microphone: &'static str,
    pub camera_on: &'static str,
    pub camera_unavailable: &'static str,
    pub camera_unavailable_fix: &'static str,
    pub your_video: &'static str,
    pub quality: &'static str,
    pub details: &'static str,
    pub rtt: &'static str,
    pub jitter: &'static str,
    pub loss: &'static str,
    pub bitrate: &'static str,
    pub sending_at: &'static str,
    pub codec: &'static str,
    pub jitter_buffer: &'static str,
    pub concealment: &'static str,
    pub verification_code: &'static str,
    pub call_time: &'static str,
    pub voice_level: &'static str,
    pub participants: &'static str,
    pub verification_explained: &'static str,
    pub path: &'static str,
    pub path_direct: &'static str,
    pub path_relayed: &'static str,
    pub mos: &'static str,
    pub your_microphone: &'static str,
    pub echo_cancellation: &'static str,
    pub noise_suppression: &'static str,
    pub auto_gain: &'static str,
    pub on: &'static str,
    pub off: &'static str,
    pub unknown: &'static str,
    pub hint_loss: &'static str,
    pub hint_delay: &'static str,
    pub hint_jitter: &'static str,
    pub mic_gone: &'static str,
    pub mic_gone_fix: &'static str,
    pub share: &'static str,
    pub scan_to_join: &'static str,
    pub before_you_join: &'static str,
    pub microphone_device: &'static str,
    pub camera_device: &'static str,
    pub device_fallback: &'static str,
    pub play_test_sound: &'static str,
    pub playing_test_sound: &'static str,
    pub guide_title: &'static str,
    pub guide_why: &'static str,
    pub guide_ios_menu: &'static str,
    pub guide_ios_open: &'static str,
    pub guide_android_menu: &'static str,
    pub guide_android_open: &'static str,
    pub guide_other_menu: &'static str,
    pub guide_other_open: &'static str,
    pub guide_copy: &'static str,
    pub app_wechat: &'static str,
    pub app_qq: &'static str,
    pub app_weibo: &'static str,
    pub app_dingtalk: &'static str,
    pub app_alipay: &'static str,
    pub app_tiktok: &'static str,
    pub app_messenger: &'static str,
    pub app_facebook: &'static str,
    pub app_instagram: &'static str,
    pub app_line: &'static str,
}

const EN: Text = Text {
    app_name: "LinkCall",
    switch_language: "中文",
    tagline: "Voice calls from a link. No app, no account.",
    how_it_works: "Create a room, send the link in any chat, and talk as soon as they tap it.",
    create_room: "Create a room",
    share_label: "Send this link to the person you want to talk to",
    copy: "Copy link",
    copied: "Copied",
    join: "Join call",
    join_again: "Join again",
    mute: "Mute",
    unmute: "Unmute",
    leave: "Leave",
    new_room: "New room",
    state_idle: "Ready when you are",
    state_waiting: "Waiting for the other person to open the link…",
    state_connecting: "Connecting…",
    state_connected: "In call",
    state_reconnecting: "Reconnecting…",
    state_failed: "Call stopped",
    state_ended: "You left the call",
    guest: "Guest",
    speaking: "speaking",
    you_are_muted: "You are muted",
    tap_to_hear: "Tap to hear the call",
    peer_left: "The other person left. Keep this page open: they can come back with the same link.",
    mic_denied: "Microphone access is blocked.",
    mic_denied_fix: "Allow the microphone for this site (the lock or ⓘ icon next to the address), then tap Join again.",
    no_mic: "No microphone was found.",
    no_mic_fix: "Connect a microphone or headset, then tap Join again.",
    mic_busy: "Your microphone is being used by another app.",
    mic_busy_fix: "Close other calling or recording apps, then tap Join again.",
    insecure: "This page was not opened over a secure connection, so the browser will not share your microphone.",
    insecure_fix: "Open the link starting with https:// (or on this computer, http://localhost).",
    no_webrtc: "This browser cannot make calls.",
    no_webrtc_fix: "Copy the link below and open it in an up-to-date Safari, Chrome, Edge or Firefox.",
    relay_unreachable: "Cannot reach the call server.",
    relay_unreachable_fix: "Check your internet connection, then tap Join again.",
    relay_lost: "The connection to the call server was lost.",
    relay_lost_fix: "Check your internet connection, then tap Join again.",
    room_full: "This room is full.",
    room_full_fix: "Ask the others to make room, or create a new room.",
    bad_room: "This room link is not valid.",
    bad_room_fix: "Check that the whole link was copied, or create a new room.",
    outdated: "This page is out of date.",
    outdated_fix: "Reload the page, then tap Join again.",
    relay_busy: "The call server is busy for your network right now.",
    relay_busy_fix: "Wait a minute, then tap Join again.",
    peer_unreachable: "Could not connect to the other person.",
    peer_unreachable_fix: "Your network or theirs blocks calls. Try switching between Wi-Fi and mobile data, then leave and join again.",
    unexpected: "Something went wrong.",
    unexpected_fix: "Reload the page and try again.",
    not_found: "There is nothing at this address.",
    test_microphone: "Test microphone",
    camera_on: "Camera",
    camera_unavailable: "The camera could not start.",
    camera_unavailable_fix: "Allow the camera for this site, or close other apps using it. The call goes on with voice.",
    your_video: "Your camera",
    quality: "Call quality",
    details: "Details",
    rtt: "Round trip",
    jitter: "Jitter",
    loss: "Packet loss (in / out)",
    bitrate: "Bitrate (send / receive)",
    sending_at: "Sending at most",
    codec: "Codec",
    jitter_buffer: "Jitter buffer",
    concealment: "Concealed audio",
    verification_code: "Security code",
    call_time: "Call time",
    voice_level: "voice level",
    participants: "People in the call",
    verification_explained: "Read it to each other: if you both see the same code, nobody is listening in between you, not even our server.",
    path: "Network path",
    path_direct: "Direct",
    path_relayed: "Relayed (TURN)",
    mos: "Voice quality (MOS, 1 to 4.5)",
    your_microphone: "Your microphone",
    echo_cancellation: "Echo cancellation",
    noise_suppression: "Noise suppression",
    auto_gain: "Automatic gain",
    on: "on",
    off: "off",
    unknown: "unknown",
    hint_loss: "Your connection is losing packets: move closer to the Wi-Fi router, or switch between Wi-Fi and mobile data.",
    hint_delay: "The connection is slow, so replies arrive late: pause a moment before you speak, or try another network.",
    hint_jitter: "The connection is unsteady: close apps that download or stream in the background.",
    mic_gone: "The chosen microphone is not available any more.",
    mic_gone_fix: "Pick another microphone in the list, then tap Join again.",
    share: "Share…",
    scan_to_join: "Or scan with a phone to join there",
    before_you_join: "Before you join",
    microphone_device: "Microphone",
    camera_device: "Camera",
    device_fallback: "Device",
    play_test_sound: "Play test sound",
    playing_test_sound: "Playing…",
    guide_title: "Open this link in your browser to call",
    guide_why: "The browser inside {app} cannot use the microphone, so the call cannot start here.",
    guide_ios_menu: "Tap ··· at the top right.",
    guide_ios_open: "Choose “Open in Safari”.",
    guide_android_menu: "Tap ⋮ or ··· at the top right.",
    guide_android_open: "Choose “Open in browser”.",
    guide_other_menu: "Copy the link below.",
    guide_other_open: "Paste it into Chrome, Safari, Edge or Firefox.",
    guide_copy: "Or copy the link and paste it into your browser:",
    app_wechat: "WeChat",
    app_qq: "QQ",
    app_weibo: "Weibo",
    app_dingtalk: "DingTalk",
    app_alipay: "Alipay",
    app_tiktok: "TikTok",
    app_messenger: "Messenger",
    app_facebook: "Facebook",
    app_instagram: "Instagram",
    app_line: "LINE",
};

const ZH: Text = Text {
    app_name: "链接通话",
    switch_language: "English",
    tagline: "点开链接就能通话。无需安装,无需注册。",
    how_it_works: "创建房间,把链接发到任意聊天里,对方一点开就能和你通话。",
    create_room: "创建房间",
    share_label: "把这个链接发给想通话的人",
    copy: "复制链接",
    copied: "已复制",
    join: "加入通话",
    join_again: "重新加入",
    mute: "静音",
    unmute: "取消静音",
    leave: "离开",
    new_room: "新房间",
    state_idle: "准备好就加入吧",
    state_waiting: "正在等待对方打开链接……",
    state_connecting: "正在连接……",
    state_connected: "通话中",
    state_reconnecting: "正在重新连接……",
    state_failed: "通话已中断",
    state_ended: "你已离开通话",
    guest: "访客",
    speaking: "正在说话",
    you_are_muted: "你已静音",
    tap_to_hear: "点此收听通话",
    peer_left: "对方已离开。请保持此页面打开,对方可以用同一个链接回来。",
    mic_denied: "麦克风权限被拒绝。",
    mic_denied_fix: "请在地址栏旁的锁形或 ⓘ 图标中允许此网站使用麦克风,然后点击“重新加入”。",
    no_mic: "没有找到麦克风。",
    no_mic_fix: "请连接麦克风或耳机,然后点击“重新加入”。",
    mic_busy: "麦克风正被其他应用占用。",
    mic_busy_fix: "请关闭其他通话或录音应用,然后点击“重新加入”。",
    insecure: "此页面不是通过安全连接打开的,浏览器不会允许使用麦克风。",
    insecure_fix: "请打开以 https:// 开头的链接(在本机上可用 http://localhost)。",
    no_webrtc: "此浏览器无法进行通话。",
    no_webrtc_fix: "请复制下面的链接,在最新版的 Safari、Chrome、Edge 或 Firefox 中打开。",
    relay_unreachable: "无法连接到通话服务器。",
    relay_unreachable_fix: "请检查网络连接,然后点击“重新加入”。",
    relay_lost: "与通话服务器的连接已断开。",
    relay_lost_fix: "请检查网络连接,然后点击“重新加入”。",
    room_full: "这个房间已满。",
    room_full_fix: "请让其他人腾出位置,或创建一个新房间。",
    bad_room: "这个房间链接无效。",
    bad_room_fix: "请确认链接复制完整,或创建一个新房间。",
    outdated: "此页面版本过旧。",
    outdated_fix: "请刷新页面,然后点击“重新加入”。",
    relay_busy: "通话服务器目前对你所在的网络繁忙。",
    relay_busy_fix: "请稍等一分钟,然后点击“重新加入”。",
    peer_unreachable: "无法连接到对方。",
    peer_unreachable_fix: "你或对方的网络阻止了通话。请尝试在 Wi-Fi 和移动数据之间切换,然后离开并重新加入。",
    unexpected: "出了点问题。",
    unexpected_fix: "请刷新页面后重试。",
    not_found: "这个地址什么也没有。",
    test_microphone: "测试麦克风",
    camera_on: "摄像头",
    camera_unavailable: "无法打开摄像头。",
    camera_unavailable_fix: "请允许此网站使用摄像头,或关闭正在使用它的其他应用。通话会以语音继续。",
    your_video: "你的画面",
    quality: "通话质量",
    details: "详细信息",
    rtt: "往返时延",
    jitter: "抖动",
    loss: "丢包率(收 / 发)",
    bitrate: "码率(发 / 收)",
    sending_at: "发送上限",
    codec: "编码",
    jitter_buffer: "抖动缓冲",
    concealment: "补偿音频",
    verification_code: "安全码",
    call_time: "通话时长",
    voice_level: "音量",
    participants: "通话中的人",
    verification_explained: "互相念一遍:如果你们看到的安全码相同,就说明你们之间没有人在偷听,我们的服务器也不能。",
    path: "网络路径",
    path_direct: "直连",
    path_relayed: "中继(TURN)",
    mos: "语音质量(MOS,1 至 4.5)",
    your_microphone: "你的麦克风",
    echo_cancellation: "回声消除",
    noise_suppression: "降噪",
    auto_gain: "自动增益",
    on: "开",
    off: "关",
    unknown: "未知",
    hint_loss: "网络正在丢包:请靠近 Wi-Fi 路由器,或在 Wi-Fi 和移动数据之间切换。",
    hint_delay: "网络延迟较高,对方的话会晚到:说话前稍等片刻,或换一个网络。",
    hint_jitter: "网络不稳定:请关闭在后台下载或播放视频的应用。",
    mic_gone: "所选的麦克风已不可用。",
    mic_gone_fix: "请在列表中选择其他麦克风,然后点击“重新加入”。",
    share: "分享…",
    scan_to_join: "也可以用手机扫码,在手机上加入",
    before_you_join: "加入前检查",
    microphone_device: "麦克风",
    camera_device: "摄像头",
    device_fallback: "设备",
    play_test_sound: "播放测试音",
    playing_test_sound: "正在播放……",
    guide_title: "请在浏览器中打开此链接进行通话",
    guide_why: "{app}内置的浏览器无法使用麦克风,无法在这里通话。",
    guide_ios_menu: "点击右上角的 ···",
    guide_ios_open: "选择“在 Safari 中打开”。",
    guide_android_menu: "点击右上角的 ⋮ 或 ···",
    guide_android_open: "选择“在浏览器打开”。",
    guide_other_menu: "复制下面的链接。",
    guide_other_open: "粘贴到 Chrome、Safari、Edge 或 Firefox 中打开。",
    guide_copy: "也可以复制链接,粘贴到浏览器中打开:",
    app_wechat: "微信",
    app_qq: "QQ",
    app_weibo: "微博",
    app_dingtalk: "钉钉",
    app_alipay: "支付宝",
    app_tiktok: "抖音",
    app_messenger: "Messenger",
    app_facebook: "Facebook",
    app_instagram: "Instagram",
    app_line: "LINE",
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chinese_tags_pick_chinese_and_everything_else_english() {
        for tag in ["zh", "zh-CN", "zh-TW", "ZH-hans"] {
            assert_eq!(Lang::from_tag(tag), Lang::Zh, "{tag}");
        }
        for tag in ["", "en-US", "fr", "z"] {
            assert_eq!(Lang::from_tag(tag), Lang::En, "{tag}");
        }
    }

    #[test]
    fn the_first_paint_says_what_the_app_says() {
        let page = include_str!("../../index.html");
        for lang in [Lang::En, Lang::Zh] {
            let text = lang.text();
            for words in [
                text.app_name,
                text.tagline,
                text.how_it_works,
                text.create_room,
                text.state_idle,
                text.join,
                text.state_connecting,
            ] {
                assert!(page.contains(words), "index.html's first paint lacks {words}");
            }
        }
    }
}
