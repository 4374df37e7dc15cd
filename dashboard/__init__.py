"""The static fleet dashboard (index.html, JS modules, CSS, vendored MQTT.js), shipped as
package data so `evidence-agent demo --mqtt` finds it in a checkout and in an installed wheel."""
