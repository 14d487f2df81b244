// Renders every <div class="mermaid"> of the page (fenced ```mermaid blocks) as a diagram.
mermaid.initialize({ startOnLoad: true, securityLevel: "strict", theme: "neutral" });
