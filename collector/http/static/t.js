// Privacy-first analytics tracker: options, calls and what is sent are in docs/tracker.md.
// Written compact on purpose (budget: 2 KB gzipped as served). Serving drops comment lines and
// indentation only, so keep comments on lines of their own.
(function(w,d){
  var s=d.currentScript,L=w.location,N=w.navigator,H=w.history,SS='sessionStorage';
  if(!s)return;
  var A=function(k){return s.getAttribute('data-'+k)};
  var has=function(k){return A(k)!=null};
  var list=function(v){return (v||'').split(/\s*,\s*/).filter(Boolean)};
  var api=A('api')||new URL(s.src).origin+'/api/event';
  var domain=A('domain')||L.hostname,hash=has('hash'),searchKeys=list(A('search'));
  var exts=list(A('extensions')||'pdf,xlsx,docx,pptx,csv,txt,zip,gz,7z,rar,dmg,exe,msi,pkg,apk,mp3,mp4');
  // data-exclude: path patterns, * within one segment, ** across segments
  var excluded=list(A('exclude')).map(function(p){
    return RegExp('^'+p.replace(/[.+?^${}()|[\]\\]/g,'\\$&').replace(/\*\*?/g,function(m){return m[1]?'.*':'[^/]*'})+'/?$');
  });
  var CID='collector_cid',ID='collector_identity',mem;
  var get=function(st,k){try{return w[st].getItem(k)}catch(e){}};
  var put=function(st,k,v){try{v?w[st].setItem(k,v):w[st].removeItem(k)}catch(e){}};
  var now=function(){return Date.now()};

  function ignored(){
    return get('localStorage','collector_ignore')=='true'||
      (/^(localhost$|127\.|\[::1\])/.test(L.hostname)||L.protocol=='file:')&&!has('allow-local')||
      N.webdriver&&!has('allow-automation')||
      excluded.some(function(r){return r.test(L.pathname)});
  }

  // Random per-tab-session id: <creation time in base36 seconds>.<random>; never derived from user data.
  function cid(){
    var c=get(SS,CID)||mem,r;
    if(!c){
      r=w.crypto.getRandomValues(new Uint32Array(2));
      c=Math.floor(now()/1e3).toString(36)+'.'+r[0].toString(36)+r[1].toString(36);
    }
    put(SS,CID,mem=c);
    return c;
  }

  function href(){return hash?L.href:L.href.split('#')[0]}

  function send(name,o){
    if(ignored())return;
    var b={n:name,u:href(),d:domain,r:d.referrer,h:+hash},k;
    for(k in o)if(o[k]!=null)b[k]=o[k];
    // Global Privacy Control: nothing linkable leaves the browser (no client id, no identity).
    if(N.globalPrivacyControl)b.gpc=1;
    else{b.cid=cid();b.identity=get(SS,ID)}
    b=JSON.stringify(b);
    // text/plain, so no CORS preflight; fetch keepalive when the beacon queue is full
    N.sendBeacon(api,b)||fetch(api,{method:'POST',body:b,keepalive:true}).catch(function(){});
  }

  // Engagement: foreground time on the current page, sent when it is hidden, left or replaced.
  var last,page,acc=0,since=0;
  function resume(){if(!since&&d.visibilityState=='visible')since=now()}
  function flush(){
    if(since)acc+=now()-since;
    since=0;
    if(page&&acc>0)send('engagement',{e:acc,u:page});
    acc=0;
  }
  // Time so far belongs to the identity it was spent under: send it before the identity changes.
  function restart(){flush();resume()}

  function pageview(force){
    var k=L.pathname+(hash?L.hash:''),q=new URLSearchParams(L.search),o={};
    if(force!=1&&k==last)return;
    flush();
    last=k;
    page=!ignored()&&href();
    resume();
    searchKeys.some(function(p){return o.search=q.get(p)});
    send('pageview',o);
  }

  function text(el){return (el.innerText||'').trim().slice(0,100)}

  // Clicks: tagged elements, file downloads, outbound links; middle clicks arrive as auxclick.
  function click(e){
    var t=e.target,el,a,p={},u,o;
    if(e.type=='auxclick'&&e.button!=1||!t.closest&&!(t=t.parentElement))return;
    el=t.closest('[data-collector-event]');
    a=t.closest('a[href]');
    if(el){
      [].forEach.call(el.attributes,function(x){
        var m=/^data-collector-prop-(.+)/.exec(x.name);
        if(m)p[m[1]]=x.value;
      });
      return send(el.getAttribute('data-collector-event'),{p:p,text:text(el)});
    }
    try{u=new URL(a.href)}catch(x){}
    if(!u||!/^https?:$/.test(u.protocol))return;
    o={p:{url:u.origin+u.pathname},link:u.origin+u.pathname,text:text(a)};
    if(exts.indexOf(u.pathname.split('.').pop().toLowerCase())>-1)send('File Download',o);
    else if(u.host!=L.host)send('Outbound Link: Click',o);
  }

  var calls={
    event:function(n,o){send(n+'',{p:o&&o.props})},
    pageview:function(){pageview(1)},
    search:function(t,o){send('Site Search',{search:t+'',p:o&&o.props})},
    // Engagement is only ever sent under the identity its page view had: the rest of the current
    // page's time is dropped when the identity changes.
    identify:function(t){restart();page=0;put(SS,ID,t)},
    // After logout the tab gets a fresh client id, so later anonymous browsing is a new visitor.
    logout:function(){restart();page=0;put(SS,ID);put(SS,CID);mem=0}
  };
  function collector(c){
    var f=calls[c];
    if(f)f.apply(0,[].slice.call(arguments,1));
  }
  var queue=(w.collector&&w.collector.q)||[],later=/^(event|search|pageview)$/;
  w.collector=collector;

  ['pushState','replaceState'].forEach(function(m){
    var orig=H[m];
    H[m]=function(){var r=orig.apply(this,arguments);pageview();return r};
  });
  var on=function(x,k,f){x.addEventListener(k,f)};
  on(w,'popstate',function(){pageview()});
  if(hash)on(w,'hashchange',function(){pageview()});
  // Back/forward cache restore: the script does not run again, so count the restored page once here.
  on(w,'pageshow',function(e){if(e.persisted)pageview(1)});
  on(d,'visibilitychange',function(){d.visibilityState=='hidden'?flush():resume()});
  on(w,'pagehide',flush);
  on(d,'click',click);
  on(d,'auxclick',click);

  // Calls queued before load: identity calls first so the first pageview carries them.
  queue.forEach(function(a){if(!later.test(a[0]))collector.apply(0,a)});
  pageview(1);
  queue.forEach(function(a){if(later.test(a[0]))collector.apply(0,a)});
})(window,document);
