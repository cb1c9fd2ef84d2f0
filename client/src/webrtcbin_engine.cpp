#include <rendezvous/client/webrtcbin_engine.hpp>

#include <boost/asio/post.hpp>
#include <spdlog/spdlog.h>

#define GST_USE_UNSTABLE_API  // webrtcbin's library API is "unstable" in 1.22
#include <gst/gst.h>
#include <gst/sdp/sdp.h>
#include <gst/webrtc/webrtc.h>

#include <atomic>
#include <map>
#include <mutex>
#include <thread>
#include <utility>

namespace rendezvous::client {

namespace {

// Identifies one webrtcbin instance: the negotiator's (peer, gen), plus the
// engine's instance number (a rollback replaces the webrtcbin of a gen).
struct conn_key {
  std::string peer;
  std::uint64_t gen = 0;
  std::uint64_t instance = 0;
};

struct channel_rec {
  GstWebRTCDataChannel* channel = nullptr;  // a reference we hold
  bool opened = false;
  bool closed = false;
};

struct connection {
  conn_key key;
  GstElement* pipeline = nullptr;
  GstElement* webrtc = nullptr;
  GSource* bus_source = nullptr;
  conn_key* cb_data = nullptr;  // user data of every GStreamer callback of this instance
  std::vector<channel_rec> channels;
  GstWebRTCDataChannel* active = nullptr;  // the channel we send on
  bool channel_open_reported = false;
  bool channel_close_reported = false;
  std::vector<std::string> local_mids;
  std::vector<std::string> remote_mids;
  bool negotiation_needed_reported = false;
  bool created_channel = false;
};

std::string error_text(GError* e) {
  std::string s = e && e->message ? e->message : "unknown error";
  if (e) g_error_free(e);
  return s;
}

// The error a webrtcbin promise replied with, if any.
std::optional<std::string> promise_error(GstPromise* p) {
  if (gst_promise_wait(p) != GST_PROMISE_RESULT_REPLIED) return "promise not replied";
  const GstStructure* r = gst_promise_get_reply(p);
  if (r && gst_structure_has_field(r, "error")) {
    GError* e = nullptr;
    gst_structure_get(r, "error", G_TYPE_ERROR, &e, nullptr);
    return error_text(e);
  }
  return std::nullopt;
}

pc_state to_pc_state(GstWebRTCPeerConnectionState s) {
  switch (s) {
    case GST_WEBRTC_PEER_CONNECTION_STATE_NEW: return pc_state::fresh;
    case GST_WEBRTC_PEER_CONNECTION_STATE_CONNECTING: return pc_state::connecting;
    case GST_WEBRTC_PEER_CONNECTION_STATE_CONNECTED: return pc_state::connected;
    case GST_WEBRTC_PEER_CONNECTION_STATE_DISCONNECTED: return pc_state::disconnected;
    case GST_WEBRTC_PEER_CONNECTION_STATE_FAILED: return pc_state::failed;
    case GST_WEBRTC_PEER_CONNECTION_STATE_CLOSED: return pc_state::closed;
  }
  return pc_state::fresh;
}

}  // namespace

struct webrtcbin_engine::impl : std::enable_shared_from_this<webrtcbin_engine::impl> {
  boost::asio::any_io_executor events;
  std::shared_ptr<negotiator*> sink = std::make_shared<negotiator*>(nullptr);  // events executor only
  GMainContext* ctx = nullptr;
  GMainLoop* loop = nullptr;
  std::thread thread;
  std::atomic<bool> stopped{false};

  // ---- engine thread only ----
  webrtcbin_options options;
  std::map<std::pair<std::string, std::uint64_t>, std::unique_ptr<connection>> conns;
  std::uint64_t next_instance = 1;
  bool draining = false;  // drain() is closing the channels: closes are not reported

  ~impl() {
    if (loop) g_main_loop_unref(loop);
    if (ctx) g_main_context_unref(ctx);
  }

  // Queues `fn` to the engine thread, in order (an idle source attached to
  // our context: never runs inline, whatever thread calls).
  void invoke(std::function<void()> fn) {
    if (stopped) return;
    auto* box = new std::function<void()>(std::move(fn));
    GSource* src = g_idle_source_new();
    g_source_set_priority(src, G_PRIORITY_DEFAULT);
    g_source_set_callback(
        src,
        [](gpointer data) -> gboolean {
          try {
            (*static_cast<std::function<void()>*>(data))();
          } catch (const std::exception& e) {
            spdlog::error("webrtcbin engine: {}", e.what());
          } catch (...) {
            spdlog::error("webrtcbin engine: unknown exception");
          }
          return G_SOURCE_REMOVE;
        },
        box, [](gpointer data) { delete static_cast<std::function<void()>*>(data); });
    g_source_attach(src, ctx);
    g_source_unref(src);
  }

  // Posts an event to the application's executor, where it reaches the negotiator.
  template <class F>
  void emit(F f) {
    boost::asio::post(events, [sink = sink, f = std::move(f)]() {
      if (!*sink) return;
      try {
        f(**sink);
      } catch (const std::exception& e) {
        spdlog::error("webrtcbin engine event handler threw: {}", e.what());
      } catch (...) {
        spdlog::error("webrtcbin engine event handler threw");
      }
    });
  }

  connection* lookup(const conn_key& k, bool check_instance = true) {
    auto it = conns.find({k.peer, k.gen});
    if (it == conns.end()) return nullptr;
    if (check_instance && it->second->key.instance != k.instance) return nullptr;
    return it->second.get();
  }
  connection* lookup(const std::string& peer, std::uint64_t gen) {
    auto it = conns.find({peer, gen});
    return it == conns.end() ? nullptr : it->second.get();
  }

  void report_error(const conn_key& k, std::string what) {
    spdlog::warn("webrtcbin peer={} gen={}: {}", k.peer, k.gen, what);
    emit([k, what = std::move(what)](negotiator& n) { n.on_engine_error(k.peer, k.gen, what); });
  }

  // ---- building and tearing down (engine thread) ----

  std::unique_ptr<connection> build(const std::string& peer, std::uint64_t gen, bool create_channel,
                                    const std::string& label) {
    auto c = std::make_unique<connection>();
    c->key = {peer, gen, next_instance++};
    c->cb_data = new conn_key(c->key);
    c->pipeline = gst_pipeline_new(nullptr);
    c->webrtc = gst_element_factory_make("webrtcbin", nullptr);
    if (!c->pipeline || !c->webrtc) {
      if (c->webrtc) gst_object_unref(c->webrtc);
      if (c->pipeline) gst_object_unref(c->pipeline);
      delete c->cb_data;
      return nullptr;
    }
    g_object_set(c->webrtc, "bundle-policy", GST_WEBRTC_BUNDLE_POLICY_MAX_BUNDLE, nullptr);
    if (!options.ice.stun.empty())
      g_object_set(c->webrtc, "stun-server", options.ice.stun.front().c_str(), nullptr);
    for (const auto& t : options.ice.turn) {
      gboolean ok = FALSE;
      g_signal_emit_by_name(c->webrtc, "add-turn-server", t.c_str(), &ok);
      if (!ok) spdlog::warn("webrtcbin: TURN server refused: {}", t);
    }
    gst_bin_add(GST_BIN(c->pipeline), c->webrtc);  // the bin takes the element's floating ref

    g_signal_connect(c->webrtc, "on-negotiation-needed", G_CALLBACK(&impl::on_negotiation_needed_cb),
                     c->cb_data);
    g_signal_connect(c->webrtc, "on-ice-candidate", G_CALLBACK(&impl::on_ice_candidate_cb), c->cb_data);
    g_signal_connect(c->webrtc, "on-data-channel", G_CALLBACK(&impl::on_data_channel_cb), c->cb_data);
    g_signal_connect(c->webrtc, "notify::connection-state", G_CALLBACK(&impl::on_connection_state_cb),
                     c->cb_data);

    GstBus* bus = gst_pipeline_get_bus(GST_PIPELINE(c->pipeline));
    c->bus_source = gst_bus_create_watch(bus);
    g_source_set_callback(c->bus_source, G_SOURCE_FUNC(&impl::on_bus_cb), c->cb_data, nullptr);
    g_source_attach(c->bus_source, ctx);
    gst_object_unref(bus);

    // Pitfall 1: the channel must exist before PLAYING, or the offer has no
    // m-section. READY -> channel -> PLAYING.
    gst_element_set_state(c->pipeline, GST_STATE_READY);
    if (!options.local_ips.empty()) {
      GstWebRTCICE* ice = nullptr;
      g_object_get(c->webrtc, "ice-agent", &ice, nullptr);
      if (ice) {
        for (const auto& ip : options.local_ips) {
          gboolean ok = FALSE;
          g_signal_emit_by_name(ice, "add-local-ip-address", ip.c_str(), &ok);
          if (!ok) spdlog::warn("webrtcbin: local address refused: {}", ip);
        }
        gst_object_unref(ice);
      }
    }
    if (create_channel) {
      GstWebRTCDataChannel* ch = nullptr;
      g_signal_emit_by_name(c->webrtc, "create-data-channel", label.c_str(), nullptr, &ch);
      if (ch) {
        connect_channel(ch, c->cb_data);
        c->channels.push_back({ch, false, false});  // the signal's return is our reference
        c->created_channel = true;
      } else {
        spdlog::warn("webrtcbin: create-data-channel failed");
      }
    }
    if (gst_element_set_state(c->pipeline, GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE) {
      teardown(*c);
      return nullptr;
    }
    return c;
  }

  static void connect_channel(GstWebRTCDataChannel* ch, conn_key* data) {
    g_signal_connect(ch, "on-open", G_CALLBACK(&impl::on_channel_open_cb), data);
    g_signal_connect(ch, "on-close", G_CALLBACK(&impl::on_channel_close_cb), data);
    g_signal_connect(ch, "on-error", G_CALLBACK(&impl::on_channel_error_cb), data);
    g_signal_connect(ch, "on-message-string", G_CALLBACK(&impl::on_message_string_cb), data);
    g_signal_connect(ch, "on-message-data", G_CALLBACK(&impl::on_message_data_cb), data);
  }

  void teardown(connection& c) {
    if (c.bus_source) {
      g_source_destroy(c.bus_source);
      g_source_unref(c.bus_source);
      c.bus_source = nullptr;
    }
    for (auto& rec : c.channels) g_signal_handlers_disconnect_by_data(rec.channel, c.cb_data);
    if (c.webrtc) g_signal_handlers_disconnect_by_data(c.webrtc, c.cb_data);
    // Stops webrtcbin's threads: after this no callback of this instance runs.
    if (c.pipeline) gst_element_set_state(c.pipeline, GST_STATE_NULL);
    for (auto& rec : c.channels) gst_object_unref(rec.channel);
    c.channels.clear();
    c.active = nullptr;
    if (c.pipeline) gst_object_unref(c.pipeline);
    c.pipeline = c.webrtc = nullptr;
    delete c.cb_data;
    c.cb_data = nullptr;
  }

  // ---- GStreamer callbacks (GStreamer threads): copy and queue ----

  static void on_negotiation_needed_cb(GstElement*, gpointer data) {
    auto k = *static_cast<conn_key*>(data);
    with_impl([k](impl& e) {
      auto* c = e.lookup(k);
      // Pitfall 1: it can fire more than once. It also fires for a webrtcbin
      // with nothing to negotiate (no channel of ours): an offer from there
      // would have no m-section, so only a channel creator reports it.
      if (!c || c->negotiation_needed_reported || !c->created_channel) return;
      c->negotiation_needed_reported = true;
      e.emit([k](negotiator& n) { n.on_negotiation_needed(k.peer, k.gen); });
    });
  }

  static void on_ice_candidate_cb(GstElement*, guint mline, gchar* cand, gpointer data) {
    auto k = *static_cast<conn_key*>(data);
    std::string text = cand ? cand : "";
    with_impl([k, mline, text = std::move(text)](impl& e) {
      auto* c = e.lookup(k);
      if (!c || text.empty()) return;
      std::string mid = mline < c->local_mids.size() ? c->local_mids[mline] : std::to_string(mline);
      // libdatachannel's form carries the a= prefix (pitfall 3).
      candidate out{text.starts_with("a=") ? text : "a=" + text, std::move(mid)};
      e.emit([k, out = std::move(out)](negotiator& n) { n.on_local_candidate(k.peer, k.gen, out); });
    });
  }

  static void on_connection_state_cb(GstElement* webrtc, GParamSpec*, gpointer data) {
    auto k = *static_cast<conn_key*>(data);
    GstWebRTCPeerConnectionState s = GST_WEBRTC_PEER_CONNECTION_STATE_NEW;
    g_object_get(webrtc, "connection-state", &s, nullptr);  // pitfall 4: ice-connection-state stays "new"
    auto state = to_pc_state(s);
    with_impl([k, state](impl& e) {
      if (!e.lookup(k)) return;
      spdlog::debug("webrtcbin peer={} gen={} connection-state={}", k.peer, k.gen, to_string(state));
      e.emit([k, state](negotiator& n) { n.on_connection_state(k.peer, k.gen, state); });
    });
  }

  static void on_data_channel_cb(GstElement*, GstWebRTCDataChannel* ch, gpointer data) {
    auto* kp = static_cast<conn_key*>(data);
    // Connect at once, before the channel can emit anything.
    connect_channel(ch, kp);
    gst_object_ref(ch);
    auto k = *kp;
    with_impl([k, ch, kp](impl& e) {
      auto* c = e.lookup(k);
      if (!c) {
        g_signal_handlers_disconnect_by_data(ch, kp);  // compares the pointer only
        gst_object_unref(ch);
        return;
      }
      for (auto& rec : c->channels)
        if (rec.channel == ch) {
          gst_object_unref(ch);
          return;
        }
      c->channels.push_back({ch, false, false});
      // webrtcbin may have opened it before this ran.
      GstWebRTCDataChannelState st = GST_WEBRTC_DATA_CHANNEL_STATE_CONNECTING;
      g_object_get(ch, "ready-state", &st, nullptr);
      if (st == GST_WEBRTC_DATA_CHANNEL_STATE_OPEN) e.channel_opened(*c, ch);
    });
  }

  static void on_channel_open_cb(GstWebRTCDataChannel* ch, gpointer data) {
    auto k = *static_cast<conn_key*>(data);
    gst_object_ref(ch);
    with_impl([k, ch](impl& e) {
      if (auto* c = e.lookup(k)) e.channel_opened(*c, ch);
      gst_object_unref(ch);
    });
  }

  static void on_channel_close_cb(GstWebRTCDataChannel* ch, gpointer data) {
    auto k = *static_cast<conn_key*>(data);
    gst_object_ref(ch);
    with_impl([k, ch](impl& e) {
      if (auto* c = e.lookup(k)) e.channel_closed(*c, ch, "closed");
      gst_object_unref(ch);
    });
  }

  static void on_channel_error_cb(GstWebRTCDataChannel* ch, GError* err, gpointer data) {
    auto k = *static_cast<conn_key*>(data);
    std::string what = err && err->message ? err->message : "channel error";
    gst_object_ref(ch);
    with_impl([k, ch, what](impl& e) {
      if (auto* c = e.lookup(k)) e.channel_closed(*c, ch, what);
      gst_object_unref(ch);
    });
  }

  static void on_message_string_cb(GstWebRTCDataChannel*, gchar* str, gpointer data) {
    auto k = *static_cast<conn_key*>(data);
    std::string text = str ? str : "";
    with_impl([k, text = std::move(text)](impl& e) {
      if (!e.lookup(k)) return;
      e.emit([k, text](negotiator& n) { n.on_channel_message(k.peer, k.gen, text); });
    });
  }

  static void on_message_data_cb(GstWebRTCDataChannel*, GBytes* bytes, gpointer data) {
    auto k = *static_cast<conn_key*>(data);
    gsize size = 0;
    const char* p = bytes ? static_cast<const char*>(g_bytes_get_data(bytes, &size)) : nullptr;
    std::string text = p ? std::string(p, size) : std::string{};
    with_impl([k, text = std::move(text)](impl& e) {
      if (!e.lookup(k)) return;
      e.emit([k, text](negotiator& n) { n.on_channel_message(k.peer, k.gen, text); });
    });
  }

  static gboolean on_bus_cb(GstBus*, GstMessage* msg, gpointer data) {
    // Runs on the engine thread (the watch is attached to our context).
    auto k = *static_cast<conn_key*>(data);
    if (GST_MESSAGE_TYPE(msg) == GST_MESSAGE_ERROR) {
      GError* err = nullptr;
      gchar* dbg = nullptr;
      gst_message_parse_error(msg, &err, &dbg);
      std::string what = error_text(err);
      g_free(dbg);
      with_impl_now([&](impl& e) {
        auto* c = e.lookup(k);
        if (!c) return;
        // Pitfall 6: the remote side closing shows up as an SCTP error.
        if (what.find("SCTP") != std::string::npos || what.find("sctp") != std::string::npos) {
          spdlog::debug("webrtcbin peer={} gen={}: {} (taken as the channel closing)", k.peer, k.gen, what);
          e.all_channels_closed(*c);
        } else {
          e.report_error(k, "GStreamer error: " + what);
        }
      });
    } else if (GST_MESSAGE_TYPE(msg) == GST_MESSAGE_WARNING) {
      GError* err = nullptr;
      gst_message_parse_warning(msg, &err, nullptr);
      spdlog::debug("webrtcbin peer={} gen={} warning: {}", k.peer, k.gen, error_text(err));
    }
    return G_SOURCE_CONTINUE;
  }

  // ---- channel bookkeeping (engine thread) ----

  void channel_opened(connection& c, GstWebRTCDataChannel* ch) {
    channel_rec* rec = nullptr;
    for (auto& r : c.channels)
      if (r.channel == ch) rec = &r;
    if (!rec || rec->opened || rec->closed) return;  // pitfall 5: on-open can fire twice
    rec->opened = true;
    if (!c.active) c.active = ch;
    if (c.channel_open_reported) return;
    c.channel_open_reported = true;
    auto k = c.key;
    spdlog::debug("webrtcbin peer={} gen={}: data channel open", k.peer, k.gen);
    emit([k](negotiator& n) { n.on_channel_open(k.peer, k.gen); });
  }

  void channel_closed(connection& c, GstWebRTCDataChannel* ch, const std::string& why) {
    for (auto& r : c.channels)
      if (r.channel == ch) r.closed = true;
    if (c.active != ch) return;
    c.active = nullptr;
    for (auto& r : c.channels)
      if (r.opened && !r.closed) c.active = r.channel;
    if (c.active) return;
    spdlog::debug("webrtcbin peer={} gen={}: data channel {}", c.key.peer, c.key.gen, why);
    report_closed(c);
  }

  void all_channels_closed(connection& c) {
    for (auto& r : c.channels) r.closed = true;
    c.active = nullptr;
    report_closed(c);
  }

  void report_closed(connection& c) {
    if (draining || !c.channel_open_reported || c.channel_close_reported) return;
    c.channel_close_reported = true;
    auto k = c.key;
    emit([k](negotiator& n) { n.on_channel_closed(k.peer, k.gen); });
  }

  // ---- descriptions (engine thread) ----

  void make_description(const std::string& peer, std::uint64_t gen, bool offer) {
    auto* c = lookup(peer, gen);
    if (!c) return;
    auto* k = new conn_key(c->key);
    auto* promise =
        gst_promise_new_with_change_func(offer ? &impl::on_offer_created_cb : &impl::on_answer_created_cb, k,
                                         [](gpointer d) { delete static_cast<conn_key*>(d); });
    g_signal_emit_by_name(c->webrtc, offer ? "create-offer" : "create-answer", nullptr, promise);
  }

  static void on_offer_created_cb(GstPromise* p, gpointer data) { on_created(p, data, true); }
  static void on_answer_created_cb(GstPromise* p, gpointer data) { on_created(p, data, false); }

  static void on_created(GstPromise* p, gpointer data, bool offer) {
    auto k = *static_cast<conn_key*>(data);
    auto err = promise_error(p);
    GstWebRTCSessionDescription* desc = nullptr;
    if (!err) {
      const GstStructure* r = gst_promise_get_reply(p);
      if (r)
        gst_structure_get(r, offer ? "offer" : "answer", GST_TYPE_WEBRTC_SESSION_DESCRIPTION, &desc, nullptr);
      if (!desc) err = std::string("no ") + (offer ? "offer" : "answer") + " in webrtcbin's reply";
    }
    gst_promise_unref(p);
    with_impl([k, desc, err, offer](impl& e) {
      auto* c = e.lookup(k);
      if (!c) {
        if (desc) gst_webrtc_session_description_free(desc);
        return;
      }
      if (err) return e.report_error(k, std::string(offer ? "create-offer" : "create-answer") + ": " + *err);
      gchar* text = gst_sdp_message_as_text(desc->sdp);
      std::string sdp = text ? text : "";
      g_free(text);
      c->local_mids = media_mids(sdp);
      auto* box = new std::pair<conn_key, description>(
          k, description{offer ? sdp_type::offer : sdp_type::answer, sdp});
      auto* promise = gst_promise_new_with_change_func(&impl::on_local_set_cb, box, [](gpointer d) {
        delete static_cast<std::pair<conn_key, description>*>(d);
      });
      g_signal_emit_by_name(c->webrtc, "set-local-description", desc, promise);
      gst_webrtc_session_description_free(desc);
    });
  }

  static void on_local_set_cb(GstPromise* p, gpointer data) {
    auto box = *static_cast<std::pair<conn_key, description>*>(data);
    auto err = promise_error(p);
    gst_promise_unref(p);
    with_impl([box = std::move(box), err](impl& e) {
      const auto& k = box.first;
      if (!e.lookup(k)) return;
      if (err) return e.report_error(k, "set-local-description: " + *err);
      e.emit([k, d = box.second](negotiator& n) { n.on_local_description(k.peer, k.gen, d); });
    });
  }

  void set_remote(const std::string& peer, std::uint64_t gen, const description& d) {
    auto* c = lookup(peer, gen);
    if (!c) return;
    GstSDPMessage* sdp = nullptr;
    if (gst_sdp_message_new_from_text(d.sdp.c_str(), &sdp) != GST_SDP_OK || !sdp) {
      if (sdp) gst_sdp_message_free(sdp);
      return report_error(c->key, "unparsable remote SDP");
    }
    // Pitfall 3: the remote-description property updates late; map mids from the text.
    c->remote_mids = media_mids(d.sdp);
    auto* desc = gst_webrtc_session_description_new(
        d.type == sdp_type::offer ? GST_WEBRTC_SDP_TYPE_OFFER : GST_WEBRTC_SDP_TYPE_ANSWER, sdp);
    auto* k = new conn_key(c->key);
    auto* promise = gst_promise_new_with_change_func(&impl::on_remote_set_cb, k,
                                                     [](gpointer x) { delete static_cast<conn_key*>(x); });
    g_signal_emit_by_name(c->webrtc, "set-remote-description", desc, promise);
    gst_webrtc_session_description_free(desc);
  }

  static void on_remote_set_cb(GstPromise* p, gpointer data) {
    auto k = *static_cast<conn_key*>(data);
    auto err = promise_error(p);
    gst_promise_unref(p);
    with_impl([k, err](impl& e) {
      if (!e.lookup(k)) return;
      if (err) return e.report_error(k, "set-remote-description: " + *err);
      e.emit([k](negotiator& n) { n.on_remote_description_set(k.peer, k.gen); });
    });
  }

  // ---- the engine a callback belongs to ----
  // GStreamer callbacks only carry a conn_key; the (single) live engine is
  // found here. One engine per process is what rendezvous-peer needs.
  static std::mutex& registry_mutex() {
    static std::mutex m;
    return m;
  }
  static std::weak_ptr<impl>& registry() {
    static std::weak_ptr<impl> w;
    return w;
  }
  template <class F>
  static void with_impl(F f) {
    std::shared_ptr<impl> e;
    {
      std::lock_guard lock(registry_mutex());  // held only to copy the pointer
      e = registry().lock();
    }
    if (!e || e->stopped) return;
    e->invoke([e, f = std::move(f)]() mutable { f(*e); });
  }
  template <class F>
  static void with_impl_now(F f) {  // already on the engine thread
    std::shared_ptr<impl> e;
    {
      std::lock_guard lock(registry_mutex());
      e = registry().lock();
    }
    if (e && !e->stopped) f(*e);
  }
};

// ---- webrtcbin_engine ----

std::unique_ptr<webrtcbin_engine> webrtcbin_engine::create(boost::asio::any_io_executor events,
                                                           std::string* why) {
  auto fail = [&](std::string text) {
    if (why) *why = std::move(text);
    return nullptr;
  };
  GError* err = nullptr;
  if (!gst_init_check(nullptr, nullptr, &err))
    return fail("GStreamer failed to initialise: " + error_text(err));
  for (const char* name : {"webrtcbin", "nicesrc", "dtlsenc", "sctpenc"}) {
    GstElementFactory* f = gst_element_factory_find(name);
    if (!f)
      return fail(std::string("GStreamer element '") + name +
                  "' is missing: install gstreamer1.0-plugins-bad and gstreamer1.0-nice "
                  "(scripts/install-deps-client.sh)");
    gst_object_unref(f);
  }
  auto p = std::make_shared<impl>();
  {
    std::lock_guard lock(impl::registry_mutex());
    if (!impl::registry().expired()) return fail("only one webrtcbin engine per process");
    impl::registry() = p;
  }
  p->events = std::move(events);
  p->ctx = g_main_context_new();
  p->loop = g_main_loop_new(p->ctx, FALSE);
  p->thread = std::thread([raw = p.get()] {
    g_main_context_push_thread_default(raw->ctx);
    g_main_loop_run(raw->loop);
    g_main_context_pop_thread_default(raw->ctx);
  });
  // Pitfall 7: the DTLS certificate (RSA-2048) is generated once per process,
  // by the first dtlsdec. Make one now, on the engine thread, so the key is
  // ready by the time the first offer or answer needs it instead of adding
  // 250 ms (more on a loaded machine) to every connect.
  p->invoke([] {
    if (GstElement* warm = gst_element_factory_make("dtlsdec", nullptr))
      gst_object_unref(gst_object_ref_sink(warm));
  });
  return std::unique_ptr<webrtcbin_engine>(new webrtcbin_engine(std::move(p)));
}

webrtcbin_engine::webrtcbin_engine(std::shared_ptr<impl> p) : impl_(std::move(p)) {}

webrtcbin_engine::~webrtcbin_engine() { shutdown(); }

void webrtcbin_engine::set_negotiator(negotiator* n) { *impl_->sink = n; }

void webrtcbin_engine::set_options(webrtcbin_options o) {
  impl_->invoke([e = impl_.get(), o = std::move(o)] { e->options = o; });
}

void webrtcbin_engine::create_connection(const std::string& peer, std::uint64_t gen, bool create_channel,
                                         const std::string& label) {
  impl_->invoke([e = impl_.get(), peer, gen, create_channel, label] {
    auto c = e->build(peer, gen, create_channel, label);
    if (!c) return e->report_error({peer, gen, 0}, "could not start webrtcbin");
    spdlog::debug("webrtcbin peer={} gen={}: started (channel={})", peer, gen, create_channel);
    e->conns[{peer, gen}] = std::move(c);
  });
}

void webrtcbin_engine::create_offer(const std::string& peer, std::uint64_t gen, bool) {
  impl_->invoke([e = impl_.get(), peer, gen] { e->make_description(peer, gen, true); });
}

void webrtcbin_engine::create_answer(const std::string& peer, std::uint64_t gen) {
  impl_->invoke([e = impl_.get(), peer, gen] { e->make_description(peer, gen, false); });
}

void webrtcbin_engine::set_remote_description(const std::string& peer, std::uint64_t gen,
                                              const description& d) {
  impl_->invoke([e = impl_.get(), peer, gen, d] { e->set_remote(peer, gen, d); });
}

void webrtcbin_engine::rollback(const std::string& peer, std::uint64_t gen) {
  // webrtcbin 1.22 does not implement rollback. A collision only happens
  // while a connection is being set up, so the engine rolls back by replacing
  // the webrtcbin with a fresh one (no channel: the offer it is about to
  // answer brings the remote's). Events of the old instance are ignored.
  impl_->invoke([e = impl_.get(), peer, gen] {
    auto it = e->conns.find({peer, gen});
    if (it == e->conns.end()) return;
    e->teardown(*it->second);
    e->conns.erase(it);
    auto c = e->build(peer, gen, false, {});
    if (!c) return e->report_error({peer, gen, 0}, "could not restart webrtcbin for a rollback");
    e->conns[{peer, gen}] = std::move(c);
    e->emit([peer, gen](negotiator& n) { n.on_rolled_back(peer, gen); });
  });
}

void webrtcbin_engine::add_remote_candidate(const std::string& peer, std::uint64_t gen,
                                            const candidate& cand) {
  impl_->invoke([e = impl_.get(), peer, gen, cand] {
    auto* c = e->lookup(peer, gen);
    if (!c || cand.candidate.empty()) return;  // end of candidates: nothing to tell webrtcbin
    auto index = mline_index(c->remote_mids, cand.mid);
    if (!index)
      return spdlog::warn("webrtcbin peer={}: candidate for unknown mid '{}' dropped", peer, cand.mid);
    auto text = strip_candidate_prefix(cand.candidate);
    g_signal_emit_by_name(c->webrtc, "add-ice-candidate", *index, text.c_str());
  });
}

void webrtcbin_engine::send_text(const std::string& peer, std::uint64_t gen, const std::string& text) {
  impl_->invoke([e = impl_.get(), peer, gen, text] {
    auto* c = e->lookup(peer, gen);
    if (!c || !c->active) return;
    GError* err = nullptr;
    if (!gst_webrtc_data_channel_send_string_full(c->active, text.c_str(), &err))
      spdlog::warn("webrtcbin peer={}: send failed: {}", peer, error_text(err));
  });
}

void webrtcbin_engine::close_connection(const std::string& peer, std::uint64_t gen) {
  impl_->invoke([e = impl_.get(), peer, gen] {
    auto it = e->conns.find({peer, gen});
    if (it == e->conns.end()) return;
    e->teardown(*it->second);
    e->conns.erase(it);
  });
}

void webrtcbin_engine::drain(std::chrono::milliseconds timeout, std::function<void()> done) {
  // Two phases, polled every 10 ms on the engine thread: (1) every channel has
  // handed its buffered data to SCTP; (2) every channel is closed gracefully
  // (an SCTP stream reset, which the remote side completes after it has
  // received what was sent before it). Each phase waits `timeout` at most.
  // Closes seen meanwhile are not reported: the peer is leaving.
  struct state {
    impl* e;
    std::function<void()> done;
    gint64 timeout_us;
    gint64 deadline;
    bool closing = false;
  };
  auto us = static_cast<gint64>(timeout.count()) * 1000;
  auto* s = new state{impl_.get(), std::move(done), us, g_get_monotonic_time() + us};
  impl_->invoke([s] {
    GSource* src = g_timeout_source_new(10);
    g_source_set_callback(
        src,
        [](gpointer data) -> gboolean {
          auto* st = static_cast<state*>(data);
          auto now = g_get_monotonic_time();
          bool waiting = false;
          for (auto& [key, c] : st->e->conns)
            for (auto& r : c->channels) {
              if (!r.opened || r.closed) continue;
              if (!st->closing) {
                guint64 amount = 0;
                g_object_get(r.channel, "buffered-amount", &amount, nullptr);
                waiting |= amount > 0;
              } else {
                GstWebRTCDataChannelState rs = GST_WEBRTC_DATA_CHANNEL_STATE_OPEN;
                g_object_get(r.channel, "ready-state", &rs, nullptr);
                waiting |= rs != GST_WEBRTC_DATA_CHANNEL_STATE_CLOSED;
              }
            }
          if (waiting && now < st->deadline) return G_SOURCE_CONTINUE;
          if (!st->closing) {
            st->closing = true;
            st->e->draining = true;
            st->deadline = now + st->timeout_us;
            for (auto& [key, c] : st->e->conns)
              for (auto& r : c->channels)
                if (r.opened && !r.closed) gst_webrtc_data_channel_close(r.channel);
            return G_SOURCE_CONTINUE;
          }
          boost::asio::post(st->e->events, std::move(st->done));
          return G_SOURCE_REMOVE;
        },
        s, [](gpointer data) { delete static_cast<state*>(data); });
    g_source_attach(src, s->e->ctx);
    g_source_unref(src);
  });
}

void webrtcbin_engine::shutdown() {
  if (!impl_ || impl_->stopped) return;
  *impl_->sink = nullptr;
  impl_->invoke([e = impl_.get()] {
    for (auto& [key, c] : e->conns) e->teardown(*c);
    e->conns.clear();
    g_main_loop_quit(e->loop);
  });
  if (impl_->thread.joinable()) impl_->thread.join();
  impl_->stopped = true;
  std::lock_guard lock(impl::registry_mutex());
  impl::registry().reset();
}

}  // namespace rendezvous::client
