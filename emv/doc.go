// Package emv is the gate's EMV contactless kernel: APDU commands and status
// words, the tag dictionary, and the flow of one tap (PPSE, application
// selection, PDOL, GET PROCESSING OPTIONS, READ RECORD, GENERATE AC or
// INTERNAL AUTHENTICATE) over a small Transceiver interface. It never talks to
// PC/SC itself.
package emv
