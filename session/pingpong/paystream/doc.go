// Package paystream runs the pay-as-you-go exchange of one session over
// its session control stream (p2p/sessionproto): Provider drives an
// InvoiceTracker, sending invoices and taking exchange messages; Consumer
// drives an InvoicePayer, answering invoices. Both send keepalives while
// the stream is otherwise quiet, treat a peer that stays silent past the
// read timeout as gone, end with a Destroy or an Error carrying the stable
// code, and stop every goroutine they start before returning.
//
// The session managers call these after the SessionRequest/SessionResponse
// handshake, once the tunnel is up.
package paystream
