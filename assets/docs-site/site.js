/*
 * The generated site's only script (plain browser JS, no build step): pan, zoom and neighbour
 * highlight on the lineage graph, and the pipeline charts drawn with uPlot from the page's
 * JSON data block. Pages read fine without it; it never loads anything from the network.
 */
/* global document, window, uPlot */
(function () {
  'use strict';

  var SVG_NS = 'http://www.w3.org/2000/svg';
  var PALETTE = ['#2563eb', '#dc2626', '#16a34a', '#d97706', '#7c3aed', '#0891b2', '#db2777', '#65a30d', '#9333ea', '#ea580c'];
  var STATUS_COLOURS = {
    COMPLETE: '#16a34a',
    FAILED: '#dc2626',
    TIMEOUT: '#9f1239',
    RUNNING: '#2563eb',
    PENDING: '#6b7280',
    CANCELLED: '#d97706',
  };

  // ---- lineage graph -------------------------------------------------------------------------

  function setupGraph(svg) {
    var box = svg.viewBox.baseVal;
    var home = { x: box.x, y: box.y, width: box.width, height: box.height };
    var view = { x: home.x, y: home.y, width: home.width, height: home.height };
    function apply() {
      svg.setAttribute('viewBox', [view.x, view.y, view.width, view.height].join(' '));
    }
    function toGraph(event) {
      var rect = svg.getBoundingClientRect();
      return {
        x: view.x + ((event.clientX - rect.left) / rect.width) * view.width,
        y: view.y + ((event.clientY - rect.top) / rect.height) * view.height,
      };
    }
    svg.addEventListener(
      'wheel',
      function (event) {
        event.preventDefault();
        var at = toGraph(event);
        var factor = event.deltaY > 0 ? 1.15 : 1 / 1.15;
        var width = Math.min(home.width * 8, Math.max(home.width / 8, view.width * factor));
        var scale = width / view.width;
        view.x = at.x - (at.x - view.x) * scale;
        view.y = at.y - (at.y - view.y) * scale;
        view.width = width;
        view.height *= scale;
        apply();
      },
      { passive: false },
    );
    var drag = null;
    var dragged = false;
    svg.addEventListener('pointerdown', function (event) {
      drag = { x: event.clientX, y: event.clientY, viewX: view.x, viewY: view.y };
      dragged = false;
    });
    svg.addEventListener('pointermove', function (event) {
      if (!drag) return;
      var dx = event.clientX - drag.x;
      var dy = event.clientY - drag.y;
      if (!dragged && Math.abs(dx) + Math.abs(dy) < 4) return;
      dragged = true;
      var rect = svg.getBoundingClientRect();
      view.x = drag.viewX - (dx / rect.width) * view.width;
      view.y = drag.viewY - (dy / rect.height) * view.height;
      apply();
    });
    window.addEventListener('pointerup', function () {
      drag = null;
    });
    // A drag that ends on a node is a pan, not a click on its link.
    svg.addEventListener(
      'click',
      function (event) {
        if (dragged) event.preventDefault();
        dragged = false;
      },
      true,
    );
    svg.addEventListener('dblclick', function () {
      view = { x: home.x, y: home.y, width: home.width, height: home.height };
      apply();
    });
    setupHighlight(svg);
  }

  function setupHighlight(svg) {
    var edges = Array.prototype.slice.call(svg.querySelectorAll('path.edge'));
    var nodes = {};
    svg.querySelectorAll('g.node').forEach(function (g) {
      nodes[g.getAttribute('data-node')] = g;
    });
    function clear() {
      svg.classList.remove('highlighting');
      svg.querySelectorAll('.lit').forEach(function (el) {
        el.classList.remove('lit');
      });
    }
    function light(id) {
      clear();
      svg.classList.add('highlighting');
      nodes[id].classList.add('lit');
      edges.forEach(function (edge) {
        var from = edge.getAttribute('data-from');
        var to = edge.getAttribute('data-to');
        if (from !== id && to !== id) return;
        edge.classList.add('lit');
        if (nodes[from]) nodes[from].classList.add('lit');
        if (nodes[to]) nodes[to].classList.add('lit');
      });
    }
    Object.keys(nodes).forEach(function (id) {
      var target = nodes[id].parentNode.namespaceURI === SVG_NS && nodes[id].parentNode.tagName === 'a' ? nodes[id].parentNode : nodes[id];
      target.addEventListener('mouseenter', function () {
        light(id);
      });
      target.addEventListener('mouseleave', clear);
      target.addEventListener('focus', function () {
        light(id);
      });
      target.addEventListener('blur', clear);
    });
  }

  // ---- charts ---------------------------------------------------------------------------------

  function readPageData() {
    var block = document.getElementById('page-data');
    return block ? JSON.parse(block.textContent) : null;
  }

  var DAY = 86400;
  function dayOf(ms) {
    return Math.floor(ms / 1000 / DAY) * DAY;
  }
  function daySeconds(day) {
    return Date.parse(day + 'T00:00:00Z') / 1000;
  }

  /** [xs, ...ys] with one label per y series. */
  function durationChart(runs) {
    return {
      labels: ['seconds'],
      data: [
        runs.at.map(function (ms) {
          return ms / 1000;
        }),
        runs.durationMs.map(function (ms) {
          return ms === null ? null : ms / 1000;
        }),
      ],
    };
  }

  function rowsChart(runs) {
    return {
      labels: ['rows'],
      data: [
        runs.at.map(function (ms) {
          return ms / 1000;
        }),
        runs.rows,
      ],
    };
  }

  function statusChart(runs) {
    var days = [];
    var counts = {};
    var statuses = [];
    runs.at.forEach(function (ms, i) {
      var day = dayOf(ms);
      var status = runs.status[i];
      if (days[days.length - 1] !== day) days.push(day);
      if (statuses.indexOf(status) < 0) statuses.push(status);
      var key = status + '@' + day;
      counts[key] = (counts[key] || 0) + 1;
    });
    statuses.sort();
    return {
      labels: statuses,
      colours: statuses.map(function (s, i) {
        return STATUS_COLOURS[s] || PALETTE[i % PALETTE.length];
      }),
      points: true,
      byDay: true,
      data: [days].concat(
        statuses.map(function (status) {
          return days.map(function (day) {
            return counts[status + '@' + day] || 0;
          });
        }),
      ),
    };
  }

  function dqChart(dq) {
    var all = {};
    dq.forEach(function (series) {
      series.days.forEach(function (day) {
        all[day] = true;
      });
    });
    var days = Object.keys(all).sort();
    return {
      labels: dq.map(function (series) {
        return series.label;
      }),
      points: true,
      byDay: true,
      data: [days.map(daySeconds)].concat(
        dq.map(function (series) {
          var byDay = {};
          series.days.forEach(function (day, i) {
            byDay[day] = series.passRate[i];
          });
          return days.map(function (day) {
            return day in byDay ? byDay[day] : null;
          });
        }),
      ),
    };
  }

  /**
   * The x range: at least `span` seconds wide and padded by `pad`, so a single day or two runs
   * minutes apart do not leave uPlot guessing a range years wide.
   */
  function xRange(span, pad) {
    return function (u, min, max) {
      // With one point uPlot hands over a range a thousand days wide: centre on the point instead.
      if (u.data[0].length === 1) min = max = u.data[0][0];
      if (max - min < span) {
        var mid = (min + max) / 2;
        return [mid - span / 2, mid + span / 2];
      }
      return [min - pad, max + pad];
    };
  }

  function seriesWithPoints(data) {
    var n = 0;
    for (var s = 1; s < data.length; s++) {
      if (
        data[s].some(function (v) {
          return v !== null && v !== undefined;
        })
      )
        n++;
    }
    return n;
  }

  function draw(target, chart) {
    var drawn = seriesWithPoints(chart.data);
    var series = [{}].concat(
      chart.labels.map(function (label, i) {
        var colour = (chart.colours && chart.colours[i]) || PALETTE[i % PALETTE.length];
        return { label: label, stroke: colour, width: 1.5, spanGaps: true, points: { show: chart.points || chart.data[0].length < 60 } };
      }),
    );
    new uPlot(
      {
        width: Math.max(320, target.clientWidth || 800),
        height: 220,
        scales: { x: { time: true, range: chart.byDay ? xRange(3 * DAY, DAY / 2) : xRange(3600, 0) } },
        series: series,
        hooks: {
          draw: [
            function () {
              target.setAttribute('data-series-drawn', String(drawn));
            },
          ],
        },
      },
      chart.data,
      target,
    );
  }

  var BUILDERS = {
    duration: function (d) {
      return durationChart(d.runs);
    },
    rows: function (d) {
      return rowsChart(d.runs);
    },
    status: function (d) {
      return statusChart(d.runs);
    },
    dq: function (d) {
      return dqChart(d.dq);
    },
  };

  function setupCharts() {
    var targets = document.querySelectorAll('.chart[data-chart]');
    if (!targets.length || typeof uPlot === 'undefined') return;
    var data = readPageData();
    if (!data) return;
    targets.forEach(function (target) {
      var build = BUILDERS[target.getAttribute('data-chart')];
      if (build) draw(target, build(data));
    });
  }

  function start() {
    document.querySelectorAll('svg.lineage').forEach(setupGraph);
    setupCharts();
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
  else start();
})();
