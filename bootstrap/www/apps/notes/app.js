/* Notes: a data channel application that needs nothing but the page. */
(function () {
  'use strict';
  var KEY = 'dcmf.notes.v1';
  var MAX_NOTES = 100;
  var form = document.getElementById('add');
  var text = document.getElementById('text');
  var list = document.getElementById('notes');
  var empty = document.getElementById('empty');
  var store = openStore();
  var notes = load();

  /* localStorage may be missing or refuse writes (file: pages, private
   * modes, WebViews without DOM storage). */
  function openStore() {
    try {
      var s = window.localStorage;
      s.setItem(KEY + '.probe', '1');
      s.removeItem(KEY + '.probe');
      return s;
    } catch (e) {
      return null;
    }
  }

  function load() {
    if (!store) { return []; }
    try {
      var v = JSON.parse(store.getItem(KEY) || '[]');
      return Array.isArray(v) ? v.filter(function (n) {
        return n && typeof n.text === 'string' && typeof n.time === 'number';
      }).slice(0, MAX_NOTES) : [];
    } catch (e) {
      return [];
    }
  }

  function save() {
    if (!store) { return; }
    try { store.setItem(KEY, JSON.stringify(notes)); } catch (e) { /* full */ }
  }

  function render() {
    list.textContent = '';
    notes.forEach(function (note, i) {
      var li = document.createElement('li');
      var p = document.createElement('p');
      var when = document.createElement('time');
      var d = new Date(note.time);
      when.dateTime = d.toISOString();
      when.textContent = d.toLocaleString();
      p.appendChild(document.createTextNode(note.text));
      p.appendChild(when);
      var del = document.createElement('button');
      del.type = 'button';
      del.textContent = 'Delete';
      del.setAttribute('aria-label', 'Delete note ' + (i + 1));
      del.addEventListener('click', function () {
        notes.splice(i, 1);
        save();
        render();
      });
      li.appendChild(p);
      li.appendChild(del);
      list.appendChild(li);
    });
    empty.hidden = notes.length > 0;
  }

  function showEnvironment() {
    var rows = [
      ['Page', location.href],
      ['Notes kept', store ? 'in local storage on this device' : 'until this page is closed'],
      ['Started', new Date().toLocaleString()]
    ];
    var dl = document.getElementById('env');
    rows.forEach(function (r) {
      var dt = document.createElement('dt');
      var dd = document.createElement('dd');
      dt.textContent = r[0];
      dd.textContent = r[1];
      dl.appendChild(dt);
      dl.appendChild(dd);
    });
  }

  form.addEventListener('submit', function (ev) {
    ev.preventDefault();
    var t = text.value.trim();
    if (!t) { return; }
    notes.unshift({ text: t.slice(0, 500), time: Date.now() });
    notes = notes.slice(0, MAX_NOTES);
    save();
    render();
    text.value = '';
    text.focus();
  });

  /* Another tab of the same page changed the notes. */
  window.addEventListener('storage', function (ev) {
    if (ev.key === KEY) { notes = load(); render(); }
  });

  document.getElementById('running').hidden = false;
  showEnvironment();
  render();
})();
