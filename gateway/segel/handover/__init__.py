"""Handover receipts on the receiving officer's phone: a page of the console that works offline.

An installable web app (`/handover/`: manifest, service worker) that scans the QR label on a box
from a photo (jsQR, bundled), takes the receipt (officer, witness, seal numbers, condition,
photo, the phone's position), keeps it in the phone's IndexedDB queue and sends it when there is
a connection; the server side is `segel.custody.receipts.submit`, so a receipt sent twice is
recorded once. Registered with the console through the `segel.console` entry point (pages.router).
Docs: docs/custody.md ("Handover receipts"), docs/console.md.
"""
