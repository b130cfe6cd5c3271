// sealcast browser publisher (/publish): sends the camera and microphone, or a screen, to the
// cluster over WHIP (RFC 9725): one POST of the SDP offer to /whip/{stream} with the stream
// key as a Bearer token, the answer back with the session's URL in Location, a DELETE of
// that URL to stop. The ingest is ICE-lite and lists its one candidate in the answer, so
// the offer is sent once ICE gathering is done (no trickle, no PATCH).
//
// The key travels in the Authorization header only: never in a URL, never in storage, never
// logged. Nothing but this origin is contacted (the page's CSP allows nothing else).
// A classic script (no module): no build step; every string shown goes through textContent.
// `window.sealcast.publish` says what the page is doing, for the browser tests.

(function () {
  'use strict';

  const STATS_MS = 1000;
  // How long to wait for ICE gathering before sending what there is: the ingest needs no
  // candidate of ours (it is ICE-lite and learns our address from our checks).
  const GATHER_MS = 2000;
  // What a 720p30 camera gets at most; the ladder re-encodes below it.
  const MAX_BITRATE_BPS = 2_500_000;
  const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;

  const $ = (id) => document.getElementById(id);
  const form = $('publish-form');
  const nameInput = $('stream-name');
  const keyInput = $('stream-key');
  const sourceSelect = $('source');
  const startButton = $('start');
  const stopButton = $('stop');
  const preview = $('preview');
  const placeholder = $('placeholder');
  const statusLine = $('publish-status');
  const errorBox = $('error');
  const watchLink = $('watch');
  const st = {
    state: $('st-state'),
    elapsed: $('st-elapsed'),
    bitrate: $('st-bitrate'),
    video: $('st-video'),
    codec: $('st-codec'),
  };

  // What the tests read.
  const state = {
    state: 'idle', // idle | starting | connecting | live | stopping | failed
    error: '',
    status: 0, // the WHIP POST's HTTP status, once answered
    resource: '', // the session's URL (Location), while live
    startedAt: 0,
    elapsedMs: 0,
    bytesSent: 0,
    bitrateKbps: 0,
    framesSent: 0,
    codec: '',
  };
  window.sealcast = Object.assign(window.sealcast || {}, { publish: state });

  let session = null; // { pc, stream, resource, key, timer, lastBytes, lastAt }

  function setText(element, text) {
    element.textContent = text;
  }

  function showError(message) {
    state.error = message;
    setText(errorBox, message);
  }

  function setState(next, message) {
    state.state = next;
    setText(st.state, next);
    if (message !== undefined) setText(statusLine, message);
    const busy = next === 'starting' || next === 'connecting' || next === 'live' || next === 'stopping';
    startButton.disabled = busy;
    stopButton.disabled = !(next === 'connecting' || next === 'live');
    for (const input of [nameInput, keyInput, sourceSelect]) input.disabled = busy;
  }

  // ---- media -------------------------------------------------------------------------------

  async function capture(source) {
    if (!navigator.mediaDevices) {
      throw new PublishError('This page needs a secure (https://) origin to use a camera.');
    }
    const video = { width: { ideal: 1280 }, height: { ideal: 720 }, frameRate: { ideal: 30 } };
    try {
      if (source === 'screen') {
        const screen = await navigator.mediaDevices.getDisplayMedia({ video, audio: false });
        // The microphone is optional with a screen: a screen without sound still goes live.
        try {
          const mic = await navigator.mediaDevices.getUserMedia({ audio: true, video: false });
          for (const track of mic.getAudioTracks()) screen.addTrack(track);
        } catch (err) {
          console.warn('sealcast: no microphone with the screen', err);
        }
        return screen;
      }
      return await navigator.mediaDevices.getUserMedia({ video, audio: true });
    } catch (err) {
      throw new PublishError(captureMessage(err, source));
    }
  }

  function captureMessage(err, source) {
    const what = source === 'screen' ? 'screen' : 'camera or microphone';
    switch (err && err.name) {
      case 'NotAllowedError':
      case 'SecurityError':
        return `Access to the ${what} was refused. Allow it in the browser and try again.`;
      case 'NotFoundError':
      case 'OverconstrainedError':
        return `No ${what} was found.`;
      case 'NotReadableError':
      case 'AbortError':
        return `The ${what} is in use by another program or could not be started.`;
      default:
        return `The ${what} could not be opened (${(err && err.name) || err}).`;
    }
  }

  // H.264 first (the ladder's source rung passes it through), packetization mode 1, the
  // constrained baseline profile browsers encode in hardware and software alike.
  function preferH264(transceiver) {
    if (!RTCRtpSender.getCapabilities || !transceiver.setCodecPreferences) return;
    const codecs = RTCRtpSender.getCapabilities('video').codecs;
    const score = (c) => {
      if (c.mimeType.toLowerCase() !== 'video/h264') return 0;
      const fmtp = (c.sdpFmtpLine || '').toLowerCase();
      if (!fmtp.includes('packetization-mode=1')) return 1;
      return fmtp.includes('profile-level-id=42e0') ? 3 : 2;
    };
    const h264 = codecs.filter((c) => score(c) > 0).sort((a, b) => score(b) - score(a));
    if (h264.length) transceiver.setCodecPreferences(h264);
  }

  async function limitVideo(sender) {
    const parameters = sender.getParameters();
    if (!parameters.encodings || !parameters.encodings.length) parameters.encodings = [{}];
    parameters.encodings[0].maxBitrate = MAX_BITRATE_BPS;
    // Keep the picture size: a size change is a new source configuration for the ladder.
    parameters.degradationPreference = 'maintain-resolution';
    try {
      await sender.setParameters(parameters);
    } catch (err) {
      console.warn('sealcast: could not limit the video sender', err);
    }
  }

  function gathered(pc) {
    if (pc.iceGatheringState === 'complete') return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        pc.removeEventListener('icegatheringstatechange', check);
        resolve();
      };
      const check = () => {
        if (pc.iceGatheringState === 'complete') done();
      };
      const timer = setTimeout(done, GATHER_MS);
      pc.addEventListener('icegatheringstatechange', check);
    });
  }

  // ---- WHIP --------------------------------------------------------------------------------

  class PublishError extends Error {}

  function whipMessage(status, body) {
    switch (status) {
      case 400:
        return 'The server could not read this browser\'s offer.';
      case 401:
      case 403:
        return 'Wrong stream key for this stream name.';
      case 404:
        return 'This server takes no WHIP publishes.';
      case 406:
      case 415:
      case 422:
        return 'The server and this browser have no video codec in common (H.264 is needed).';
      case 503:
        return 'The server is busy or has no ingest available; try again in a moment.';
      default:
        return `The server refused the stream (HTTP ${status}${body ? `: ${body}` : ''}).`;
    }
  }

  async function errorText(response) {
    try {
      const body = await response.json();
      return typeof body.error === 'string' ? body.error.slice(0, 200) : '';
    } catch {
      return '';
    }
  }

  async function post(name, key, offer) {
    let response;
    try {
      response = await fetch(`/whip/${encodeURIComponent(name)}`, {
        method: 'POST',
        headers: { 'content-type': 'application/sdp', authorization: `Bearer ${key}` },
        body: offer,
        cache: 'no-store',
        credentials: 'omit',
        redirect: 'error',
      });
    } catch (err) {
      throw new PublishError('The server could not be reached.');
    }
    state.status = response.status;
    if (response.status !== 201) {
      throw new PublishError(whipMessage(response.status, await errorText(response)));
    }
    const location = response.headers.get('location');
    if (!location) throw new PublishError('The server answered without a session URL.');
    const resource = new URL(location, window.location.href);
    if (resource.origin !== window.location.origin) {
      throw new PublishError('The server named a session on another site; not following it.');
    }
    return { answer: await response.text(), resource: resource.href };
  }

  function remove(resource, key, keepalive) {
    return fetch(resource, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${key}` },
      cache: 'no-store',
      credentials: 'omit',
      keepalive,
    }).catch(() => undefined);
  }

  // ---- start, stop ---------------------------------------------------------------------------

  async function start() {
    showError('');
    const name = nameInput.value.trim();
    const key = keyInput.value;
    if (!NAME_PATTERN.test(name)) {
      showError('The stream name is 1 to 64 letters, digits, _ or -, starting with a letter or digit.');
      nameInput.focus();
      return;
    }
    if (!key) {
      showError('Enter the stream key.');
      keyInput.focus();
      return;
    }
    setState('starting', 'Opening the camera…');
    let stream = null;
    let pc = null;
    try {
      stream = await capture(sourceSelect.value);
      preview.srcObject = stream;
      placeholder.hidden = true;
      pc = new RTCPeerConnection({ bundlePolicy: 'max-bundle' });
      const videoTrack = stream.getVideoTracks()[0];
      if (!videoTrack) throw new PublishError('There is no video to send.');
      videoTrack.contentHint = sourceSelect.value === 'screen' ? 'detail' : 'motion';
      const video = pc.addTransceiver(videoTrack, { direction: 'sendonly', streams: [stream] });
      preferH264(video);
      for (const track of stream.getAudioTracks()) {
        pc.addTransceiver(track, { direction: 'sendonly', streams: [stream] });
      }
      session = { pc, stream, resource: '', key, timer: 0, lastBytes: 0, lastAt: 0 };
      pc.addEventListener('connectionstatechange', () => onConnectionState(pc));
      for (const track of stream.getTracks()) {
        // The user stopped sharing the screen from the browser's own bar.
        track.addEventListener('ended', () => {
          if (session && session.pc === pc) stop('The source stopped.');
        });
      }
      await pc.setLocalDescription(await pc.createOffer());
      await gathered(pc);
      setState('connecting', 'Connecting to the ingest…');
      const { answer, resource } = await post(name, key, pc.localDescription.sdp);
      session.resource = resource;
      state.resource = resource;
      await pc.setRemoteDescription({ type: 'answer', sdp: answer });
      await limitVideo(video.sender);
      watchLink.href = `/#live/${encodeURIComponent(name)}`;
      session.timer = setInterval(() => updateStats(pc), STATS_MS);
    } catch (err) {
      const message = err instanceof PublishError ? err.message : `Publishing failed: ${err && err.message ? err.message : err}`;
      await teardown();
      setState('failed', 'Not live.');
      showError(message);
    }
  }

  function onConnectionState(pc) {
    if (!session || session.pc !== pc) return;
    switch (pc.connectionState) {
      case 'connected':
        if (state.state !== 'live') {
          state.startedAt = performance.now();
          setState('live', `Live as “${nameInput.value.trim()}”.`);
          watchLink.hidden = false;
        }
        break;
      case 'failed':
        stop('The connection to the ingest failed.', true);
        break;
      case 'closed':
        break;
      default:
        break;
    }
  }

  async function updateStats(pc) {
    if (!session || session.pc !== pc) return;
    const now = performance.now();
    let bytes = 0;
    let frames = 0;
    let size = '';
    let codecId = '';
    const report = await pc.getStats();
    report.forEach((s) => {
      if (s.type !== 'outbound-rtp') return;
      bytes += s.bytesSent || 0;
      if (s.kind === 'video') {
        frames = s.framesSent || frames;
        if (s.frameWidth) size = `${s.frameWidth}×${s.frameHeight} @ ${Math.round(s.framesPerSecond || 0)} fps`;
        codecId = s.codecId || codecId;
      }
    });
    const codec = codecId && report.get(codecId);
    if (session.lastAt) {
      const kbps = ((bytes - session.lastBytes) * 8) / (now - session.lastAt);
      state.bitrateKbps = Math.max(0, Math.round(kbps));
      setText(st.bitrate, `${state.bitrateKbps} kb/s`);
    }
    session.lastBytes = bytes;
    session.lastAt = now;
    state.bytesSent = bytes;
    state.framesSent = frames;
    if (size) setText(st.video, size);
    if (codec && codec.mimeType) {
      state.codec = codec.mimeType;
      setText(st.codec, codec.mimeType.replace(/^video\//, ''));
    }
    if (state.startedAt) {
      state.elapsedMs = now - state.startedAt;
      setText(st.elapsed, clock(state.elapsedMs));
    }
  }

  function clock(ms) {
    const total = Math.floor(ms / 1000);
    const h = Math.floor(total / 3600);
    const m = Math.floor((total % 3600) / 60);
    const s = total % 60;
    const two = (n) => String(n).padStart(2, '0');
    return h ? `${h}:${two(m)}:${two(s)}` : `${m}:${two(s)}`;
  }

  async function teardown() {
    const current = session;
    session = null;
    if (!current) return;
    clearInterval(current.timer);
    if (current.resource) await remove(current.resource, current.key, false);
    if (current.pc) current.pc.close();
    if (current.stream) for (const track of current.stream.getTracks()) track.stop();
    preview.srcObject = null;
    placeholder.hidden = false;
    state.resource = '';
    state.startedAt = 0;
    setText(st.bitrate, '—');
    setText(st.elapsed, '—');
  }

  async function stop(reason, failed) {
    if (!session) return;
    setState('stopping', 'Stopping…');
    await teardown();
    if (failed) {
      setState('failed', 'Not live.');
      showError(reason);
    } else {
      setState('idle', reason || 'Not live.');
    }
  }

  form.addEventListener('submit', (event) => {
    event.preventDefault();
    start();
  });
  stopButton.addEventListener('click', () => stop('Stopped. Not live.'));
  // Closing the tab ends the session at once rather than after the ingest's idle timeout.
  window.addEventListener('pagehide', () => {
    if (session && session.resource) remove(session.resource, session.key, true);
  });
  setState('idle', 'Not live.');
})();
