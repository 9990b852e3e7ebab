/**
 * How Lattice runs headless Chromium, for the test runner's browser stage and the tests that start
 * their own browser (tests/cdn_bundle.test.ts): one list of flags, so both stay equally quiet on a
 * closed network. Plain JavaScript with no imports.
 *
 * @module
 */

/** Chromium flags that keep it quiet on a closed network: no update checks, telemetry, QUIC or name lookups. */
export const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--no-default-browser-check",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--disable-domain-reliability",
  "--disable-client-side-phishing-detection",
  "--metrics-recording-only",
  // WebRTC: no mDNS names for local ICE candidates (registering them sends multicast on the LAN).
  "--disable-features=WebRtcHideLocalIpsWithMdns",
  // Every host name except localhost fails to resolve; IP literals (127.0.0.1) are unaffected.
  "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1",
];
