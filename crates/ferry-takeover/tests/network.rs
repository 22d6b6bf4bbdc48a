//! The old OS's network configuration, read from real files under a root
//! and written as NetworkManager keyfiles: golden output per input kind,
//! the round trip through the keyfile reader, file:line errors for bad
//! input, warnings for what is not carried, and (when nmcli is installed)
//! NetworkManager's own keyfile reader agreeing with ours.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};

use ferry_takeover::network::{
    parse_ifupdown, parse_keyfile, read_keyfiles, read_root, write_keyfiles, Connection,
    NetworkError,
};
use ferry_testkit::{skip_unless, Need};

fn put(root: &Path, rel: &str, text: &str) {
    let path = root.join(rel);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, text).unwrap();
}

fn syntax(err: NetworkError) -> (String, usize, String) {
    match err {
        NetworkError::Syntax {
            path,
            line,
            message,
        } => (
            path.file_name().unwrap().to_string_lossy().into_owned(),
            line,
            message,
        ),
        other => panic!("expected a syntax error, got {other}"),
    }
}

/// Writes the connections and returns each file's text by name.
fn written(connections: &[Connection]) -> Vec<(String, String)> {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("system-connections");
    let paths = write_keyfiles(connections, &out).unwrap();
    paths
        .iter()
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                fs::read_to_string(p).unwrap(),
            )
        })
        .collect()
}

fn without_keyfile(mut c: Connection) -> Connection {
    c.keyfile = None;
    c
}

// ------------------------------------------------------------ unhappy paths

#[test]
fn an_unterminated_network_block_names_its_opening_line() {
    let root = tempfile::tempdir().unwrap();
    put(
        root.path(),
        "etc/wpa_supplicant/wpa_supplicant.conf",
        "country=DE\n\nnetwork={\n  ssid=\"home\"\n  psk=\"password1\"\n",
    );
    let (file, line, message) = syntax(read_root(root.path()).unwrap_err());
    assert_eq!(
        (file.as_str(), line),
        ("wpa_supplicant.conf", 3),
        "{message}"
    );
    assert!(message.contains("not closed"), "{message}");
}

#[test]
fn a_network_block_opened_inside_another_is_an_error_at_its_line() {
    let root = tempfile::tempdir().unwrap();
    put(
        root.path(),
        "etc/wpa_supplicant/wpa_supplicant.conf",
        "network={\n ssid=\"a\"\nnetwork={\n ssid=\"b\"\n}\n",
    );
    let (_, line, message) = syntax(read_root(root.path()).unwrap_err());
    assert_eq!(line, 3, "{message}");
}

#[test]
fn a_bad_cidr_is_an_error_at_its_line_in_the_included_file() {
    let root = tempfile::tempdir().unwrap();
    put(
        root.path(),
        "etc/network/interfaces",
        "source-directory /etc/network/interfaces.d\n",
    );
    put(
        root.path(),
        "etc/network/interfaces.d/eth0",
        "auto eth0\niface eth0 inet static\n    address 192.168.1.300/24\n",
    );
    let (file, line, message) = syntax(read_root(root.path()).unwrap_err());
    assert_eq!((file.as_str(), line), ("eth0", 3), "{message}");
    let err = parse_ifupdown(
        "iface eth0 inet static\n address 10.0.0.1/33\n",
        Path::new("interfaces"),
    )
    .unwrap_err();
    assert_eq!(syntax(err).1, 2);
    let err = parse_ifupdown(
        "iface eth0 inet dhcp\n up ip route add 10.0.0.0/40 via 10.0.0.1\n",
        Path::new("interfaces"),
    )
    .unwrap_err();
    assert_eq!(syntax(err).1, 2);
}

#[test]
fn an_unknown_method_or_family_is_an_error_at_its_line() {
    let err = parse_ifupdown(
        "auto eth0\n\n# comment\niface eth0 inet magic\n",
        Path::new("interfaces"),
    )
    .unwrap_err();
    let (_, line, message) = syntax(err);
    assert_eq!(line, 4);
    assert!(message.contains("magic"), "{message}");
    let err = parse_ifupdown("iface eth0 inet4 dhcp\n", Path::new("interfaces")).unwrap_err();
    assert_eq!(syntax(err).1, 1);
}

#[test]
fn static_without_address_and_options_outside_a_stanza_are_errors() {
    let err = parse_ifupdown(
        "iface eth0 inet static\n gateway 10.0.0.1\n",
        Path::new("i"),
    )
    .unwrap_err();
    assert_eq!(syntax(err).1, 1);
    let err = parse_ifupdown("address 10.0.0.1/24\n", Path::new("i")).unwrap_err();
    assert_eq!(syntax(err).1, 1);
}

#[test]
fn bad_psks_and_missing_ssids_are_errors() {
    for (conf, line) in [
        ("network={\n ssid=\"x\"\n psk=\"short\"\n}\n", 3),
        ("network={\n ssid=\"x\"\n psk=abcd\n}\n", 3),
        ("network={\n psk=\"long enough\"\n}\n", 1),
        ("network={\n ssid=\"x\"\n}\n", 1),
        ("network={\n ssid=\"x\n key_mgmt=NONE\n}\n", 2),
    ] {
        let root = tempfile::tempdir().unwrap();
        put(root.path(), "etc/wpa_supplicant/wpa_supplicant.conf", conf);
        let (_, got, message) = syntax(read_root(root.path()).unwrap_err());
        assert_eq!(got, line, "{conf:?}: {message}");
    }
}

#[test]
fn a_bad_keyfile_is_an_error_at_its_line() {
    let root = tempfile::tempdir().unwrap();
    put(
        root.path(),
        "etc/NetworkManager/system-connections/a.nmconnection",
        "[connection]\nid=a\ntype=ethernet\n[ipv4]\nmethod=manual\naddress1=10.0.0.1/99\n",
    );
    let (_, line, _) = syntax(read_root(root.path()).unwrap_err());
    assert_eq!(line, 6);
    let err = parse_keyfile("id=a\n", Path::new("k")).unwrap_err();
    assert_eq!(syntax(err).1, 1);
    let err = parse_keyfile("[connection\n", Path::new("k")).unwrap_err();
    assert_eq!(syntax(err).1, 1);
}

#[test]
fn what_cannot_be_carried_is_warned_about_not_dropped_silently() {
    let root = tempfile::tempdir().unwrap();
    put(
        root.path(),
        "etc/network/interfaces",
        "auto lo\niface lo inet loopback\n\
         auto bond0\niface bond0 inet dhcp\n  bond-slaves eth1 eth2\n\
         iface br0 inet dhcp\n  bridge_ports eth3\n\
         iface eth0.10 inet dhcp\n\
         iface eth0 inet6 auto\n\
         iface eth4 inet dhcp\n  hwaddress ether 02:00:00:00:00:01\n  up /usr/local/bin/thing\n",
    );
    put(
        root.path(),
        "etc/wpa_supplicant/wpa_supplicant.conf",
        "network={\n ssid=\"corp\"\n key_mgmt=WPA-EAP\n eap=PEAP\n identity=\"me\"\n}\n\
         network={\n ssid=\"old\"\n key_mgmt=NONE\n wep_key0=\"abcde\"\n}\n",
    );
    let net = read_root(root.path()).unwrap();
    let ids: Vec<&str> = net.connections.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids, ["eth4"]);
    let warnings: Vec<String> = net.warnings.iter().map(|w| w.to_string()).collect();
    let has = |needle: &str, line: usize| {
        warnings
            .iter()
            .any(|w| w.contains(needle) && w.contains(&format!(":{line}: ")))
    };
    assert!(has("bond0", 4), "{warnings:#?}");
    assert!(has("br0", 6), "{warnings:#?}");
    assert!(has("VLAN interface eth0.10", 8), "{warnings:#?}");
    assert!(has("inet6", 9), "{warnings:#?}");
    assert!(has("hwaddress", 11), "{warnings:#?}");
    assert!(has("/usr/local/bin/thing", 12), "{warnings:#?}");
    assert!(has("802.1X", 1), "{warnings:#?}");
    assert!(has("WEP", 7), "{warnings:#?}");
    assert!(!warnings.iter().any(|w| w.contains("lo ")), "{warnings:#?}");
}

// ------------------------------------------------------------ golden output

#[test]
fn static_ifupdown_with_routes_and_dns_becomes_a_manual_keyfile() {
    let root = tempfile::tempdir().unwrap();
    put(
        root.path(),
        "etc/network/interfaces",
        "# The primary network interface\nsource /etc/network/interfaces.d/*\n",
    );
    put(
        root.path(),
        "etc/network/interfaces.d/eth0",
        "allow-hotplug eth0\n\
         iface eth0 inet static\n\
         \taddress 192.168.10.5\n\
         \tnetmask 255.255.255.0\n\
         \tgateway 192.168.10.1\n\
         \tdns-nameservers 192.168.10.1 9.9.9.9\n\
         \tdns-search example.org lab.example.org\n\
         \tup ip route add 10.20.0.0/16 via 192.168.10.254 metric 50\n\
         \tpost-up route add -net 172.16.0.0 netmask 255.240.0.0 gw 192.168.10.253\n\
         \tdown ip route del 10.20.0.0/16\n",
    );
    let net = read_root(root.path()).unwrap();
    assert!(net.warnings.is_empty(), "{:?}", net.warnings);
    let files = written(&net.connections);
    assert_eq!(files.len(), 1);
    assert_eq!(files[0].0, "eth0.nmconnection");
    let uuid = net.connections[0].uuid();
    assert_eq!(
        files[0].1,
        format!(
            "[connection]\nid=eth0\nuuid={uuid}\ntype=ethernet\ninterface-name=eth0\nautoconnect=true\n\n\
             [ethernet]\n\n\
             [ipv4]\nmethod=manual\naddress1=192.168.10.5/24,192.168.10.1\n\
             dns=192.168.10.1;9.9.9.9;\ndns-search=example.org;lab.example.org;\n\
             route1=10.20.0.0/16,192.168.10.254,50\nroute2=172.16.0.0/12,192.168.10.253\n\n\
             [ipv6]\nmethod=auto\n"
        )
    );
}

#[test]
fn dhcp_ifupdown_becomes_an_auto_keyfile_and_manual_links_are_disabled() {
    let net = parse_ifupdown(
        "auto eth0\niface eth0 inet dhcp\n\niface eth1 inet manual\n",
        Path::new("interfaces"),
    )
    .unwrap();
    let files = written(&net.connections);
    let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["eth0.nmconnection", "eth1.nmconnection"]);
    let uuid = net.connections[0].uuid();
    assert_eq!(
        files[0].1,
        format!(
            "[connection]\nid=eth0\nuuid={uuid}\ntype=ethernet\ninterface-name=eth0\nautoconnect=true\n\n\
             [ethernet]\n\n[ipv4]\nmethod=auto\n\n[ipv6]\nmethod=auto\n"
        )
    );
    assert!(files[1].1.contains("autoconnect=false\n"), "{}", files[1].1);
    assert!(
        files[1].1.contains("[ipv4]\nmethod=disabled\n"),
        "{}",
        files[1].1
    );
}

const WPA: &str = "ctrl_interface=DIR=/var/run/wpa_supplicant GROUP=netdev\n\
update_config=1\ncountry=GB\n\n\
network={\n\tssid=\"Home Net\"\n\tpsk=\"correct horse\"\n\tkey_mgmt=WPA-PSK\n\tpriority=5\n}\n\n\
network={\n\tssid=6f6666696365\n\tpsk=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\n}\n\n\
# a cafe\nnetwork={\n\tssid=\"Cafe\"\n\tkey_mgmt=NONE\n}\n\n\
network={\n\tssid=\"Stealth\"\n\tscan_ssid=1\n\tpsk=\"hidden-key-1\"\n\tdisabled=1\n}\n";

#[test]
fn wpa_supplicant_networks_become_wifi_keyfiles() {
    let root = tempfile::tempdir().unwrap();
    put(
        root.path(),
        "etc/wpa_supplicant/wpa_supplicant-wlan0.conf",
        WPA,
    );
    // Raspbian's way: ifupdown hands wlan0 to wpa_supplicant.
    put(
        root.path(),
        "etc/network/interfaces",
        "allow-hotplug wlan0\niface wlan0 inet manual\n    wpa-conf /etc/wpa_supplicant/wpa_supplicant-wlan0.conf\n",
    );
    let net = read_root(root.path()).unwrap();
    let ids: Vec<&str> = net.connections.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids, ["Home Net", "office", "Cafe", "Stealth"]);
    assert_eq!(net.warnings.len(), 1, "{:?}", net.warnings);
    assert!(net.warnings[0].message.contains("wpa-conf"));
    let files = written(&net.connections);
    let text = |name: &str| {
        files
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, t)| t.clone())
            .unwrap()
    };
    let uuid = net.connections[0].uuid();
    assert_eq!(
        text("Home Net.nmconnection"),
        format!(
            "[connection]\nid=Home Net\nuuid={uuid}\ntype=wifi\ninterface-name=wlan0\nautoconnect=true\n\
             autoconnect-priority=5\n\n\
             [wifi]\nmode=infrastructure\nssid=Home Net\n\n\
             [wifi-security]\nkey-mgmt=wpa-psk\npsk=correct horse\n\n\
             [ipv4]\nmethod=auto\n\n[ipv6]\nmethod=auto\n"
        )
    );
    assert!(text("office.nmconnection").contains(
        "[wifi-security]\nkey-mgmt=wpa-psk\npsk=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\n"
    ));
    let cafe = text("Cafe.nmconnection");
    assert!(
        cafe.contains("[wifi]\nmode=infrastructure\nssid=Cafe\n\n[ipv4]"),
        "{cafe}"
    );
    assert!(!cafe.contains("wifi-security"), "{cafe}");
    let stealth = text("Stealth.nmconnection");
    assert!(stealth.contains("ssid=Stealth\nhidden=true\n"), "{stealth}");
    assert!(stealth.contains("autoconnect=false\n"), "{stealth}");
}

#[test]
fn an_nm_keyfile_is_passed_through_as_it_was() {
    let root = tempfile::tempdir().unwrap();
    let original = "[connection]\nid=Wired uplink\nuuid=5b1e3c3e-1111-4222-8333-944445555666\n\
                    type=ethernet\ninterface-name=enp1s0\n\n[ethernet]\nmtu=9000\n\n\
                    [ipv4]\naddress1=10.1.2.3/24,10.1.2.1\ndns=10.1.2.1;\nmethod=manual\n\n\
                    [ipv6]\naddr-gen-mode=stable-privacy\nmethod=auto\n\n[proxy]\n";
    put(
        root.path(),
        "etc/NetworkManager/system-connections/Wired uplink.nmconnection",
        original,
    );
    // The same interface in ifupdown too: NetworkManager's definition wins.
    put(
        root.path(),
        "etc/network/interfaces",
        "auto enp1s0\niface enp1s0 inet dhcp\n",
    );
    let net = read_root(root.path()).unwrap();
    assert_eq!(net.connections.len(), 1);
    assert_eq!(net.warnings.len(), 1, "{:?}", net.warnings);
    assert!(net.warnings[0].message.contains("already defined"));
    let c = &net.connections[0];
    assert_eq!(c.interface.as_deref(), Some("enp1s0"));
    assert_eq!(c.ipv4.addresses[0].to_string(), "10.1.2.3/24");
    assert_eq!(c.uuid(), "5b1e3c3e-1111-4222-8333-944445555666");
    let files = written(&net.connections);
    assert_eq!(files[0].0, "Wired uplink.nmconnection");
    assert_eq!(files[0].1, original);
}

// ------------------------------------------------------------ round trip

fn mixed_root() -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    put(
        root.path(),
        "etc/network/interfaces",
        "auto eth0\niface eth0 inet static\n address 192.0.2.7/28\n gateway 192.0.2.1\n\
         dns-nameservers 192.0.2.1 2001:db8::53\n dns-search example.net\n\
         up ip route add 198.51.100.0/24 via 192.0.2.2\n up ip route add 203.0.113.9 dev eth0\n\n\
         auto eth1\niface eth1 inet dhcp\n\n\
         auto wlan1\niface wlan1 inet dhcp\n wpa-ssid \"Lab AP\"\n wpa-psk \"lab-secret\"\n",
    );
    put(root.path(), "etc/wpa_supplicant/wpa_supplicant.conf", WPA);
    root
}

#[test]
fn what_is_written_reads_back_as_the_same_model() {
    let root = mixed_root();
    let net = read_root(root.path()).unwrap();
    assert_eq!(net.connections.len(), 7);
    let out = tempfile::tempdir().unwrap();
    write_keyfiles(&net.connections, out.path()).unwrap();
    let mut back: Vec<Connection> = read_keyfiles(out.path())
        .unwrap()
        .into_iter()
        .map(without_keyfile)
        .collect();
    let mut model = net.connections.clone();
    back.sort_by(|a, b| a.id.cmp(&b.id));
    model.sort_by(|a, b| a.id.cmp(&b.id));
    assert_eq!(back, model);
}

#[test]
fn keyfiles_are_written_0600_and_the_same_input_gives_the_same_bytes() {
    let root = mixed_root();
    let net = read_root(root.path()).unwrap();
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let paths = write_keyfiles(&net.connections, a.path()).unwrap();
    write_keyfiles(&read_root(root.path()).unwrap().connections, b.path()).unwrap();
    for path in &paths {
        let mode = fs::metadata(path).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode, 0o600, "{}", path.display());
        let twin = b.path().join(path.file_name().unwrap());
        assert_eq!(fs::read(path).unwrap(), fs::read(twin).unwrap());
    }
    // Nothing but the keyfiles is left behind (no staging directory).
    assert_eq!(fs::read_dir(a.path()).unwrap().count(), paths.len());
    let uuids: std::collections::BTreeSet<String> =
        net.connections.iter().map(|c| c.uuid()).collect();
    assert_eq!(uuids.len(), net.connections.len(), "uuids are distinct");
}

/// NetworkManager's own keyfile reader (`nmcli --offline`, no daemon)
/// reads every written file to the same model. It normalises without
/// validating (a psk of 3 characters passes), so this checks meaning,
/// not acceptance by a running NetworkManager.
#[test]
fn networkmanagers_keyfile_reader_agrees_with_ours() {
    skip_unless!(Need::Tool("nmcli"));
    let root = mixed_root();
    let net = read_root(root.path()).unwrap();
    let out = tempfile::tempdir().unwrap();
    let paths = write_keyfiles(&net.connections, out.path()).unwrap();
    for (path, connection) in paths.iter().zip(&net.connections) {
        let child = Command::new("nmcli")
            .args(["--offline", "connection", "modify", "connection.id"])
            .arg(&connection.id)
            .stdin(fs::File::open(path).unwrap())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        assert!(
            child.status.success() && child.stderr.is_empty(),
            "{}: {}",
            path.display(),
            String::from_utf8_lossy(&child.stderr)
        );
        let text = String::from_utf8(child.stdout).unwrap();
        let keyfile = parse_keyfile(&text, path).unwrap();
        let theirs =
            ferry_takeover::network::connection_from_keyfile(&keyfile, &text, path).unwrap();
        assert_eq!(without_keyfile(theirs), *connection, "{text}");
    }
}
