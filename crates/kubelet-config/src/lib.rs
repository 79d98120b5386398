//! The kubelet's configuration: a format-preserving `KubeletConfiguration` editor, a
//! format-preserving editor of kubelet flags in environment files, and the kubelet's effective
//! configuration (flags over drop-ins over the file over the v1beta1 defaults). Pure: bytes in,
//! bytes out, no I/O.
