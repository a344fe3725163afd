"""A real RTSP server on loopback for the video tests: GStreamer's gst-rtsp-server
(Debian: gir1.2-gst-rtsp-server-1.0, gstreamer1.0-plugins-{base,good,bad}, python3-gi)
serving an MPEG-TS file that Debian's ffmpeg made, each client from its start.

Run with Debian's /usr/bin/python3 (python3-gi is not in the project's venv):
    /usr/bin/python3 rtsp_server.py PORT FILE.ts
"""

import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402


def main() -> None:
    port, path = sys.argv[1], sys.argv[2]
    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(port)
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(
        f"( filesrc location={path} ! tsdemux ! h264parse ! rtph264pay name=pay0 pt=96 "
        "config-interval=1 )")
    factory.set_shared(False)
    server.get_mount_points().add_factory("/clip", factory)
    server.attach(None)
    print("ready", flush=True)
    GLib.MainLoop().run()


if __name__ == "__main__":
    main()
