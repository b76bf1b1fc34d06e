"use strict";
// The chat page. Every piece of data reaches the page as text nodes
// (textContent, append(string)), never as markup.
(() => {
  const LABELS = {
    fr: {
      searching: "Recherche…",
      source: "Source : ",
      shortAnswer: "Réponse courte : ",
      otherSources: "Autres sources",
      up: "Réponse utile",
      down: "Réponse pas utile",
      upShort: "Utile",
      downShort: "Pas utile",
      thanks: "Merci pour votre avis.",
      feedbackError: "Avis non enregistré, réessayez.",
      network: "Le serveur ne répond pas. Réessayez dans un instant.",
      error: "Erreur",
    },
    en: {
      searching: "Searching…",
      source: "Source: ",
      shortAnswer: "Short answer: ",
      otherSources: "Other sources",
      up: "Helpful answer",
      down: "Unhelpful answer",
      upShort: "Helpful",
      downShort: "Unhelpful",
      thanks: "Thanks for your feedback.",
      feedbackError: "Feedback not saved, please retry.",
      network: "The server does not answer. Please retry in a moment.",
      error: "Error",
    },
  };

  // Only for the waiting state: the answer then says which language it is in.
  const FRENCH =
    /[àâçéèêëîïôûùüÿœæ]|\b(le|la|les|des|du|un|une|est|sont|qui|que|quel|quelle|quels|quelles|où|combien|pourquoi|comment|quand|de|et|en)\b/i;
  const guessLang = (text) => (FRENCH.test(text) ? "fr" : "en");
  const labels = (lang) => LABELS[lang] || LABELS.en;

  // Python offsets count code points; JS strings count UTF-16 units.
  const cpSlice = (text, start, end) => Array.from(text).slice(start, end).join("");

  function el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs)) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "class") node.className = value;
      else node.setAttribute(key, String(value));
    }
    node.append(...children.filter((c) => c !== null && c !== undefined && c !== ""));
    return node;
  }

  const isWebUrl = (url) => typeof url === "string" && /^https?:\/\//i.test(url);

  // Dates as readers write them: "20 janvier 2016", "20 January 2016"; a
  // week as "18–24 janvier 2016", a whole month as "décembre 2015", a year as "2015".
  const LOCALES = { fr: "fr-FR", en: "en-GB" };
  const DAY = { day: "numeric", month: "long", year: "numeric", timeZone: "UTC" };
  const ISO_DAY = /^\d{4}-\d{2}-\d{2}$/;
  const toDate = (iso) => new Date(`${iso}T00:00:00Z`);

  function longDate(iso, lang) {
    if (typeof iso !== "string" || !ISO_DAY.test(iso)) return iso || "";
    return new Intl.DateTimeFormat(LOCALES[lang] || LOCALES.en, DAY).format(toDate(iso));
  }

  function longRange(resolved, lang) {
    const [first, last] = String(resolved).split("/");
    if (!last) return longDate(first, lang);
    if (!ISO_DAY.test(first) || !ISO_DAY.test(last)) return resolved;
    const locale = LOCALES[lang] || LOCALES.en;
    const a = toDate(first);
    const b = toDate(last);
    const nextDay = new Date(b.getTime() + 86400000);
    if (a.getUTCDate() === 1 && nextDay.getUTCDate() === 1) {
      if (a.getUTCMonth() === 0 && nextDay.getUTCMonth() === 0) return String(a.getUTCFullYear());
      if (a.getUTCMonth() === b.getUTCMonth()) {
        const month = { month: "long", year: "numeric", timeZone: "UTC" };
        return new Intl.DateTimeFormat(locale, month).format(a);
      }
    }
    return new Intl.DateTimeFormat(locale, DAY).formatRange(a, b);
  }

  // The outlet and date of a citation's article, beside its title.
  function articleMeta(citation, lang) {
    const parts = [];
    if (citation.source) parts.push(el("span", { class: "outlet" }, citation.source));
    if (citation.date) {
      parts.push(el("time", { datetime: citation.date }, longDate(citation.date, lang)));
    }
    if (!parts.length) return null;
    const meta = el("span", { class: "article-meta" }, " — ", parts[0]);
    if (parts[1]) meta.append(", ", parts[1]);
    return meta;
  }

  function viewHref(citation) {
    const params = new URLSearchParams({ start: citation.start, end: citation.end });
    return `/view/${encodeURIComponent(citation.article_id)}?${params}#cited`;
  }

  // The cited sentence, with the short answer emphasised when it lies inside it.
  function citedMark(answer, citation) {
    const mark = el("mark", { class: "cited" });
    const sa = answer.short_answer;
    const sentence = citation.sentence;
    if (sa && citation.start <= sa.start && sa.end <= citation.end && sa.start < sa.end) {
      const a = sa.start - citation.start;
      const b = sa.end - citation.start;
      mark.append(
        cpSlice(sentence, 0, a),
        el("strong", { class: "short-answer" }, cpSlice(sentence, a, b)),
        cpSlice(sentence, b),
      );
    } else {
      mark.append(sentence);
    }
    return mark;
  }

  // The passage around the citation: the first one of the same article that contains it.
  function passageQuote(answer, citation) {
    const quote = el("blockquote", { class: "passage" });
    const passage = (answer.passages || []).find(
      (p) =>
        p.article_id === citation.article_id && p.start <= citation.start && citation.end <= p.end,
    );
    if (!passage) {
      quote.append(citedMark(answer, citation));
      return quote;
    }
    const a = citation.start - passage.start;
    const b = citation.end - passage.start;
    // Paragraph breaks as single line breaks: context, not layout.
    const squeeze = (text) => text.replace(/\n\s*\n/g, "\n");
    quote.append(
      squeeze(cpSlice(passage.text, 0, a)),
      citedMark(answer, citation),
      squeeze(cpSlice(passage.text, b)),
    );
    return quote;
  }

  function sourceLine(citation, t, lang) {
    const line = el("p", { class: "source" }, el("span", { class: "label" }, t.source));
    line.append(el("a", { href: viewHref(citation), class: "article-link" }, citation.title));
    if (isWebUrl(citation.url)) {
      line.append(
        " ",
        el(
          "a",
          { href: citation.url, class: "external", target: "_blank", rel: "noopener noreferrer" },
          "↗",
        ),
      );
    }
    line.append(articleMeta(citation, lang) || "");
    return line;
  }

  function otherSources(citations, t, lang) {
    const list = el("ul");
    for (const c of citations) {
      list.append(
        el(
          "li",
          {},
          el("a", { href: viewHref(c), class: "article-link" }, c.title),
          articleMeta(c, lang),
          el("span", { class: "other-sentence" }, c.sentence),
        ),
      );
    }
    return el(
      "details",
      { class: "others" },
      el("summary", {}, `${t.otherSources} (${citations.length})`),
      list,
    );
  }

  // A drawn thumb (emoji fonts are not everywhere); CSS turns it down for "down".
  const SVG = "http://www.w3.org/2000/svg";
  function thumb() {
    const svg = document.createElementNS(SVG, "svg");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("aria-hidden", "true");
    svg.setAttribute("class", "thumb");
    const path = document.createElementNS(SVG, "path");
    path.setAttribute(
      "d",
      "M7 10v11H4a1 1 0 0 1-1-1v-9a1 1 0 0 1 1-1h3zm0 0 4-8a3 3 0 0 1 3 3v4h5.5a2 2 0 0 1 2 " +
        "2.3l-1.3 8.5a2 2 0 0 1-2 1.7H7",
    );
    svg.append(path);
    return svg;
  }

  function feedbackBar(answer, t) {
    const citation = answer.answered ? answer.citations[0] : null;
    const status = el("span", { class: "feedback-status", role: "status" });
    const bar = el("div", { class: "feedback" });
    const buttons = [];
    for (const [vote, label, short] of [
      ["up", t.up, t.upShort],
      ["down", t.down, t.downShort],
    ]) {
      const button = el(
        "button",
        { type: "button", class: `vote vote-${vote}`, "aria-label": label, title: label },
        thumb(),
        el("span", { "aria-hidden": "true" }, short),
      );
      button.addEventListener("click", async () => {
        buttons.forEach((b) => (b.disabled = true));
        try {
          const response = await fetch("/feedback", {
            method: "POST",
            headers: { "Content-Type": "application/json" },
            body: JSON.stringify({
              question: answer.question,
              answer: citation ? citation.sentence : null,
              article_id: citation ? citation.article_id : null,
              start: citation ? citation.start : null,
              end: citation ? citation.end : null,
              vote,
            }),
          });
          if (!response.ok) throw new Error(String(response.status));
          button.classList.add("chosen");
          status.textContent = t.thanks;
        } catch {
          buttons.forEach((b) => (b.disabled = false));
          status.textContent = t.feedbackError;
        }
      });
      buttons.push(button);
    }
    bar.append(...buttons, status);
    return bar;
  }

  function answerBubble(answer) {
    const t = labels(answer.language);
    const answered = answer.answered && answer.citations && answer.citations.length > 0;
    const box = el("article", {
      class: answered ? "bubble answer" : "bubble answer abstain",
      lang: answer.language,
      "data-answered": String(answered),
    });
    box.append(el("p", { class: "message" }, answer.message));
    if (answered) {
      const citation = answer.citations[0];
      box.append(passageQuote(answer, citation));
      const sa = answer.short_answer;
      if (sa && sa.text) {
        // "mercredi (20 janvier 2016)": a relative date with the day it means.
        const resolved = sa.resolved
          ? el("span", { class: "resolved" }, " (", longRange(sa.resolved, answer.language), ")")
          : null;
        box.append(
          el(
            "p",
            { class: "short" },
            el("span", { class: "label" }, t.shortAnswer),
            el("strong", {}, sa.text),
            resolved,
          ),
        );
      }
      box.append(sourceLine(citation, t, answer.language));
      if (answer.citations.length > 1) {
        box.append(otherSources(answer.citations.slice(1), t, answer.language));
      }
    }
    box.append(feedbackBar(answer, t));
    return box;
  }

  function errorBubble(message, lang) {
    const t = labels(lang);
    return el(
      "div",
      { class: "bubble answer error", lang, role: "alert" },
      el("span", { class: "label" }, `${t.error} — `),
      message,
    );
  }

  function scrollToEnd() {
    window.scrollTo({ top: document.body.scrollHeight, behavior: "smooth" });
  }

  async function ask(question, log) {
    const lang = guessLang(question);
    const t = labels(lang);
    const turn = el("div", { class: "turn" });
    turn.append(el("div", { class: "bubble question" }, question));
    const pending = el(
      "div",
      { class: "bubble answer pending", lang, role: "status", "aria-busy": "true" },
      el("span", { class: "dots", "aria-hidden": "true" }, el("i"), el("i"), el("i")),
      t.searching,
    );
    turn.append(pending);
    log.append(turn);
    scrollToEnd();
    let replacement;
    try {
      const response = await fetch("/ask", {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: "application/json" },
        body: JSON.stringify({ question }),
      });
      const data = await response.json().catch(() => null);
      if (response.ok && data) replacement = answerBubble(data);
      else {
        const message = data && data.error ? data.error.message : `HTTP ${response.status}`;
        replacement = errorBubble(message, lang);
      }
    } catch {
      replacement = errorBubble(t.network, lang);
    }
    pending.replaceWith(replacement);
    scrollToEnd();
  }

  document.addEventListener("DOMContentLoaded", () => {
    const form = document.getElementById("ask-form");
    const input = document.getElementById("question");
    const log = document.getElementById("log");
    const grow = () => {
      input.style.height = "auto";
      input.style.height = `${Math.min(input.scrollHeight, 200)}px`;
    };
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const question = input.value.trim();
      if (!question) return;
      input.value = "";
      grow();
      ask(question, log);
    });
    // Enter sends; Shift+Enter starts a new line.
    input.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        form.requestSubmit();
      }
    });
    input.addEventListener("input", grow);
  });
})();
