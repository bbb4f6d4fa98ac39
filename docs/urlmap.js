// Where gi-docgen's links into other namespaces point (see connectplugin.toml.in).
baseURLs = [
  [ 'GLib', 'https://docs.gtk.org/glib/' ],
  [ 'GObject', 'https://docs.gtk.org/gobject/' ],
  [ 'Gio', 'https://docs.gtk.org/gio/' ],
  [ 'Soup', 'https://libsoup.org/libsoup-3.0/' ],
]
