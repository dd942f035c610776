//! Where the page runs: which in-app browser (from the user agent), which phone system, and
//! whether a call can work there at all.
//!
//! Chat apps open links in their own browser. Some of them (older WeChat and QQ on Android,
//! Weibo, LINE on some versions) offer no microphone to pages, and the page cannot fix
//! that: the person must open the link in the system browser. Others can call perfectly
//! well. So the user agent only says *how* to get out (the menu differs by app and system);
//! the browser's own capabilities say *whether* to. [`verdict`] puts the two together.

/// A chat or social app's built-in browser, recognised by the token it adds to the user
/// agent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InApp {
    /// WeChat (`MicroMessenger`), including WeCom (`wxwork`).
    WeChat,
    /// QQ (`QQ/`; not the QQ Browser app, which is a full browser).
    Qq,
    /// Weibo (`Weibo`).
    Weibo,
    /// DingTalk (`DingTalk`).
    DingTalk,
    /// Alipay (`AlipayClient`).
    Alipay,
    /// Douyin or TikTok (`aweme`, `musical_ly`, `BytedanceWebview`).
    TikTok,
    /// Facebook Messenger (`Messenger`, `Orca-Android`).
    Messenger,
    /// Facebook (`FBAN`, `FBAV`, `FB_IAB`).
    Facebook,
    /// Instagram (`Instagram`).
    Instagram,
    /// LINE (`Line/`).
    Line,
}

impl InApp {
    /// The app whose browser wrote `user_agent`, if any.
    pub fn detect(user_agent: &str) -> Option<Self> {
        // Order matters: Messenger's agent also carries Facebook's tokens, and WeCom's
        // carries WeChat's.
        const TOKENS: &[(&str, InApp)] = &[
            ("micromessenger", InApp::WeChat),
            ("wxwork", InApp::WeChat),
            ("dingtalk", InApp::DingTalk),
            ("alipayclient", InApp::Alipay),
            ("aweme", InApp::TikTok),
            ("musical_ly", InApp::TikTok),
            ("bytedancewebview", InApp::TikTok),
            ("weibo", InApp::Weibo),
            ("messenger", InApp::Messenger),
            ("orca-android", InApp::Messenger),
            ("instagram", InApp::Instagram),
            ("fban", InApp::Facebook),
            ("fbav", InApp::Facebook),
            ("fb_iab", InApp::Facebook),
            (" line/", InApp::Line),
        ];
        let agent = user_agent.to_ascii_lowercase();
        if let Some(&(_, app)) = TOKENS.iter().find(|(token, _)| agent.contains(token)) {
            return Some(app);
        }
        // QQ's in-app browser says `QQ/<version>`; the QQ Browser app says `MQQBrowser/`.
        agent.split([' ', ';', '(', ')']).any(|word| word.starts_with("qq/")).then_some(InApp::Qq)
    }

    /// A stable lowercase name (`wechat`, `qq`...).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::WeChat => "wechat",
            Self::Qq => "qq",
            Self::Weibo => "weibo",
            Self::DingTalk => "dingtalk",
            Self::Alipay => "alipay",
            Self::TikTok => "tiktok",
            Self::Messenger => "messenger",
            Self::Facebook => "facebook",
            Self::Instagram => "instagram",
            Self::Line => "line",
        }
    }
}

/// The system, which decides where the "open in browser" item is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Os {
    /// iPhone or iPad: the item opens Safari.
    Ios,
    /// Android: the item opens the default browser.
    Android,
    /// A computer or anything else.
    Other,
}

impl Os {
    /// The system that wrote `user_agent`, on a screen with `touch_points` (an iPad sends
    /// a Mac's agent: "Macintosh" with a touch screen is an iPad).
    pub fn detect(user_agent: &str, touch_points: u32) -> Self {
        let agent = user_agent.to_ascii_lowercase();
        if agent.contains("android") {
            Self::Android
        } else if ["iphone", "ipad", "ipod"].iter().any(|device| agent.contains(device))
            || (agent.contains("macintosh") && touch_points > 1)
        {
            Self::Ios
        } else {
            Self::Other
        }
    }

    /// A stable lowercase name (`ios`, `android`, `other`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ios => "ios",
            Self::Android => "android",
            Self::Other => "other",
        }
    }
}

/// What the page found it can use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Support {
    /// A secure context (HTTPS, or loopback): without it there is no microphone.
    pub secure: bool,
    /// `navigator.mediaDevices.getUserMedia` exists.
    pub microphone: bool,
    /// `RTCPeerConnection` exists.
    pub peer_connection: bool,
    /// `navigator.maxTouchPoints`: an iPad's browsers say they are on a Mac, but a Mac has
    /// no touch screen.
    pub touch_points: u32,
}

impl Support {
    /// Everything a call needs is there.
    pub fn is_complete(self) -> bool {
        self.secure && self.microphone && self.peer_connection
    }
}

/// Whether a call can work here, and if not, the way out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Go ahead (in an app's browser too: get out of the way).
    Ready,
    /// This app's browser cannot call: show how to open the link in the system's browser.
    OpenInBrowser {
        /// The app.
        app: InApp,
        /// Its system, for the right steps.
        os: Os,
    },
    /// The page was opened over plain HTTP (not loopback): the link must be `https://`.
    Insecure,
    /// A microphone but no WebRTC (a browser or web view built without it, such as
    /// Debian's WebKitGTK): the person can still test their microphone and pass the link
    /// on, so show the room, and explain at Join that calls need another browser.
    MicrophoneOnly,
    /// Neither WebRTC nor a microphone API: nothing of a call works here.
    Unsupported,
}

/// Whether a call can work with `support` in the browser that wrote `user_agent`.
pub fn verdict(user_agent: &str, support: Support) -> Verdict {
    if support.is_complete() {
        return Verdict::Ready;
    }
    match InApp::detect(user_agent) {
        Some(app) => Verdict::OpenInBrowser { app, os: Os::detect(user_agent, support.touch_points) },
        None if !support.secure => Verdict::Insecure,
        None if support.microphone => Verdict::MicrophoneOnly,
        None => Verdict::Unsupported,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Real user agents, as these apps send them.
    const WECHAT_ANDROID: &str = "Mozilla/5.0 (Linux; Android 12; M2102J2SC Build/SKQ1.211006.001; wv) AppleWebKit/537.36 \
        (KHTML, like Gecko) Version/4.0 Chrome/86.0.4240.99 XWEB/4317 MMWEBSDK/20220903 Mobile Safari/537.36 \
        MMWEBID/6294 MicroMessenger/8.0.28.2240(0x28001C35) WeChat/arm64 Weixin NetType/WIFI Language/zh_CN ABI/arm64";
    const WECHAT_IOS: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 16_1 like Mac OS X) AppleWebKit/605.1.15 \
        (KHTML, like Gecko) Mobile/15E148 MicroMessenger/8.0.30(0x18001e2f) NetType/WIFI Language/zh_CN";
    const WECOM: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) \
        Chrome/81.0.4044.138 Safari/537.36 wxwork/4.0.16 MicroMessenger/7.0.1 Language/zh";
    const QQ_ANDROID: &str = "Mozilla/5.0 (Linux; Android 10; V1981A Build/QP1A.190711.020; wv) AppleWebKit/537.36 \
        (KHTML, like Gecko) Version/4.0 Chrome/77.0.3865.120 MQQBrowser/6.2 TBS/045714 Mobile Safari/537.36 \
        V1_AND_SQ_8.8.68_2538_YYB_D QQ/8.8.68.7265 NetType/WIFI WebP/0.3.0 Pixel/1080";
    const QQ_BROWSER: &str = "Mozilla/5.0 (Linux; U; Android 11; zh-cn; PEGM00 Build/RKQ1.200903.002) \
        AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/90.0.4430.93 MQQBrowser/12.9 Mobile Safari/537.36";
    const WEIBO_IOS: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 15_6 like Mac OS X) AppleWebKit/605.1.15 \
        (KHTML, like Gecko) Mobile/15E148 Weibo (iPhone14,2__weibo__12.9.1__iphone__os15.6)";
    const FACEBOOK_IOS: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 16_0 like Mac OS X) AppleWebKit/605.1.15 \
        (KHTML, like Gecko) Mobile/15E148 [FBAN/FBIOS;FBDV/iPhone13,2;FBMD/iPhone;FBSN/iOS;FBSV/16.0;FBSS/3;\
        FBID/phone;FBLC/en_US;FBOP/5]";
    const MESSENGER_ANDROID: &str = "Mozilla/5.0 (Linux; Android 13; SM-G991B Build/TP1A.220624.014; wv) \
        AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/116.0.5845.163 Mobile Safari/537.36 \
        [FB_IAB/Orca-Android;FBAV/425.0.0.22.49;]";
    const MESSENGER_IOS: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 \
        (KHTML, like Gecko) Mobile/15E148 LightSpeed [FBAN/MessengerLiteForiOS;FBAV/429.0.0.31.105;FBBV/1]";
    const INSTAGRAM: &str = "Mozilla/5.0 (Linux; Android 13; Pixel 7) AppleWebKit/537.36 (KHTML, like Gecko) \
        Version/4.0 Chrome/116.0.0.0 Mobile Safari/537.36 Instagram 298.0.0.31.110 Android (33/13; 420dpi; \
        1080x2400; Google/google; Pixel 7; panther; panther; en_US; 509940143)";
    const LINE_IOS: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 16_3 like Mac OS X) AppleWebKit/605.1.15 \
        (KHTML, like Gecko) Mobile/15E148 Safari Line/13.3.0";
    const DINGTALK: &str = "Mozilla/5.0 (Linux; U; Android 11; zh-CN; V2055A Build/RP1A.200720.012) \
        AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/69.0.3497.100 UWS/3.22.1.210 Mobile \
        Safari/537.36 AliApp(DingTalk/6.3.25) com.alibaba.android.rimet/24839880 Channel/227200 language/zh-CN";
    const DOUYIN: &str = "Mozilla/5.0 (Linux; Android 12; 22041211AC Build/SP1A.210812.016; wv) AppleWebKit/537.36 \
        (KHTML, like Gecko) Version/4.0 Chrome/99.0.4844.88 Mobile Safari/537.36 aweme_230400 JsSdk/1.0 \
        NetType/WIFI Channel/xiaomi_1128_64 app_version/23.4.0 ByteLocale/zh-CN Region/CN AppSkin/white \
        AppTheme/light BytedanceWebview/d8a21c6 WebView/075113004008";
    const CHROME_ANDROID: &str = "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) \
        Chrome/120.0.0.0 Mobile Safari/537.36";
    const SAFARI_IOS: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 \
        (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1";
    const FIREFOX_DESKTOP: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";

    const NOTHING: Support = Support { secure: true, microphone: false, peer_connection: false, touch_points: 0 };
    const EVERYTHING: Support = Support { secure: true, microphone: true, peer_connection: true, touch_points: 0 };

    #[test]
    fn recognises_the_apps_and_their_systems() {
        let cases = [
            (WECHAT_ANDROID, Some(InApp::WeChat), Os::Android),
            (WECHAT_IOS, Some(InApp::WeChat), Os::Ios),
            (WECOM, Some(InApp::WeChat), Os::Other),
            (QQ_ANDROID, Some(InApp::Qq), Os::Android),
            (WEIBO_IOS, Some(InApp::Weibo), Os::Ios),
            (FACEBOOK_IOS, Some(InApp::Facebook), Os::Ios),
            (MESSENGER_ANDROID, Some(InApp::Messenger), Os::Android),
            (MESSENGER_IOS, Some(InApp::Messenger), Os::Ios),
            (INSTAGRAM, Some(InApp::Instagram), Os::Android),
            (LINE_IOS, Some(InApp::Line), Os::Ios),
            (DINGTALK, Some(InApp::DingTalk), Os::Android),
            (DOUYIN, Some(InApp::TikTok), Os::Android),
            (QQ_BROWSER, None, Os::Android),
            (CHROME_ANDROID, None, Os::Android),
            (SAFARI_IOS, None, Os::Ios),
            (FIREFOX_DESKTOP, None, Os::Other),
            ("", None, Os::Other),
        ];
        for (agent, app, os) in cases {
            assert_eq!((InApp::detect(agent), Os::detect(agent, 0)), (app, os), "{agent}");
        }
    }

    #[test]
    fn an_app_that_can_call_is_left_alone() {
        assert_eq!(verdict(WECHAT_IOS, EVERYTHING), Verdict::Ready);
        assert_eq!(verdict(CHROME_ANDROID, EVERYTHING), Verdict::Ready);
    }

    #[test]
    fn an_app_that_cannot_call_gets_the_way_out_for_its_system() {
        assert_eq!(verdict(WECHAT_ANDROID, NOTHING), Verdict::OpenInBrowser { app: InApp::WeChat, os: Os::Android });
        assert_eq!(verdict(WEIBO_IOS, NOTHING), Verdict::OpenInBrowser { app: InApp::Weibo, os: Os::Ios });
        // Even one missing piece is enough: without a microphone there is no call.
        let no_microphone = Support { microphone: false, ..EVERYTHING };
        assert_eq!(verdict(LINE_IOS, no_microphone), Verdict::OpenInBrowser { app: InApp::Line, os: Os::Ios });
        let insecure = Support { secure: false, ..EVERYTHING };
        assert!(matches!(verdict(QQ_ANDROID, insecure), Verdict::OpenInBrowser { app: InApp::Qq, .. }));
    }

    #[test]
    fn an_ipad_that_says_it_is_a_mac_gets_the_ios_steps() {
        // WeChat on iPadOS sends a Mac's agent; only the touch screen tells them apart.
        const WECHAT_IPAD: &str = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 \
            (KHTML, like Gecko) MicroMessenger/8.0.49(0x18003137) NetType/WIFI Language/zh_CN";
        let ipad = Support { touch_points: 5, ..NOTHING };
        let ipad_steps = Verdict::OpenInBrowser { app: InApp::WeChat, os: Os::Ios };
        assert_eq!(verdict(WECHAT_IPAD, ipad), ipad_steps);
        assert_eq!(verdict(WECHAT_IPAD, NOTHING), Verdict::OpenInBrowser { app: InApp::WeChat, os: Os::Other });
        assert_eq!(Os::detect(WECHAT_IOS, 5), Os::Ios);
        assert_eq!(Os::detect(CHROME_ANDROID, 5), Os::Android);
    }

    #[test]
    fn a_plain_browser_is_told_what_is_wrong() {
        let insecure = Support { secure: false, microphone: false, ..EVERYTHING };
        assert_eq!(verdict(CHROME_ANDROID, insecure), Verdict::Insecure);
        assert_eq!(verdict(FIREFOX_DESKTOP, NOTHING), Verdict::Unsupported);
        let no_microphone = Support { microphone: false, ..EVERYTHING };
        assert_eq!(verdict(FIREFOX_DESKTOP, no_microphone), Verdict::Unsupported);
    }

    #[test]
    fn a_browser_with_a_microphone_but_no_webrtc_shows_the_room() {
        // Debian's WebKitGTK 2.50 (its agent, as it sends it): getUserMedia works,
        // RTCPeerConnection is not built in.
        const WEBKITGTK: &str = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/605.1.15 (KHTML, like Gecko) \
            Version/60.5 Safari/605.1.15";
        let no_webrtc = Support { peer_connection: false, ..EVERYTHING };
        assert_eq!(verdict(WEBKITGTK, no_webrtc), Verdict::MicrophoneOnly);
        assert_eq!(verdict(SAFARI_IOS, no_webrtc), Verdict::MicrophoneOnly);
        // Over plain HTTP the microphone is withheld whatever the browser: fix the link first.
        assert_eq!(verdict(WEBKITGTK, Support { secure: false, ..no_webrtc }), Verdict::Insecure);
        // An app's browser still gets the way out of the app, which is where calls work.
        assert_eq!(verdict(WECHAT_IOS, no_webrtc), Verdict::OpenInBrowser { app: InApp::WeChat, os: Os::Ios });
    }

    #[test]
    fn hostile_agents_do_not_panic() {
        for agent in ["QQ/", "qq", "\u{0}\u{ffff}", &"MicroMessenger".repeat(10_000), "ııı Line/"] {
            let _ = (InApp::detect(agent), Os::detect(agent, 0), verdict(agent, NOTHING));
        }
    }
}
